package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// FileError is a problem in a configuration file. Its message names the
// file, the section, the key and the line where they are known.
type FileError struct {
	Path    string
	Section string
	Key     string
	Line    int
	Err     error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Section != "" {
		fmt.Fprintf(&b, ": [%s]", e.Section)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, " %s", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// LoadFile applies the section of the TOML file at path to s, on top of the
// values s already holds. A missing section is not an error (the file may
// configure other commands); other sections and top-level keys are ignored.
// It returns the TOML keys that were set, so callers can tell which values
// came from the file.
func LoadFile(path string, s Section) ([]string, error) {
	section := s.SectionName()
	data, doc, err := readDoc(path)
	if err != nil {
		return nil, err
	}
	raw, ok := doc[section]
	if !ok {
		return nil, nil
	}
	table, ok := raw.(map[string]any)
	if !ok {
		return nil, &FileError{Path: path, Section: section, Line: findKeyLine(data, "", section),
			Err: fmt.Errorf("%q must be a table ([%s]), got %s", section, section, tomlTypeName(raw))}
	}
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	sort.Strings(keys) // stable error order
	var set []string
	for _, key := range keys {
		if key == "config" { // a path to another file makes no sense here; upstream ignores it too
			continue
		}
		f, ok := LookupField(s, key)
		if !ok {
			return nil, &FileError{Path: path, Section: section, Key: key, Line: findKeyLine(data, section, key),
				Err: fmt.Errorf("unknown key (known keys: %s)", strings.Join(keyNames(s), ", "))}
		}
		if err := f.setTOML(s, table[key]); err != nil {
			return nil, &FileError{Path: path, Section: section, Key: key, Line: findKeyLine(data, section, key), Err: err}
		}
		set = append(set, f.Key)
	}
	return set, nil
}

func keyNames(s Section) []string {
	var names []string
	for _, f := range Fields(s) {
		names = append(names, f.Key)
	}
	return names
}

// findKeyLine returns the 1-based line where key is assigned inside [section]
// (section "" means the top level), or 0 when it cannot be found.
func findKeyLine(data []byte, section, key string) int {
	current := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(t, "[") {
			current = strings.Trim(strings.TrimSpace(strings.Trim(t, "[]")), `"'`)
			if i := strings.Index(t, "]"); i > 0 {
				current = strings.Trim(strings.TrimSpace(t[1:i]), `"'`)
			}
			continue
		}
		if current != section {
			continue
		}
		name, _, ok := strings.Cut(t, "=")
		if ok && strings.Trim(strings.TrimSpace(name), `"'`) == key {
			return line
		}
	}
	return 0
}

// Dump renders s as a TOML section with every key, defaults included, in
// declaration order. Feeding the output back through LoadFile yields the
// same configuration.
func Dump(s Section) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]\n", s.SectionName())
	for _, f := range Fields(s) {
		v := f.Get(s)
		if f.Kind == reflect.Slice && v.([]string) == nil {
			v = []string{}
		}
		line, err := toml.Marshal(map[string]any{f.Key: v})
		if err != nil { // only plain strings, integers, booleans and string lists reach here
			panic(fmt.Sprintf("config: cannot render %s: %v", f.Key, err))
		}
		b.Write(line)
	}
	return b.String()
}

// KeyLine returns the line of key inside [section] of the file at path, or
// 0 when the file cannot be read or the key is not written there.
func KeyLine(path, section, key string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return findKeyLine(data, section, key)
}

// readDoc reads and parses the TOML file at path, with errors naming the
// file (and the line, for bad TOML); data is the file's text, for finding
// keys' lines.
func readDoc(path string) (data []byte, doc map[string]any, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, &FileError{Path: path, Err: errors.New("configuration file not found")}
		}
		return nil, nil, &FileError{Path: path, Err: err}
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		fe := &FileError{Path: path, Err: err}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			fe.Line, _ = de.Position()
			fe.Err = fmt.Errorf("invalid TOML: %s", de.Error())
		}
		return nil, nil, fe
	}
	return data, doc, nil
}

// SectionsIn returns the names of the top-level tables of the TOML file at
// path, in no particular order; scaler up starts one role per known table.
func SectionsIn(path string) ([]string, error) {
	_, doc, err := readDoc(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for k, v := range doc {
		if _, ok := v.(map[string]any); ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names, nil
}

// StackMonitorAddress is the scheduler monitor address that the file at
// path gives its other roles, for a [top] that names none (a stack's file,
// such as scaler up's, seldom has a [top]): [webui]'s monitor_address, else
// [scheduler]'s, else the scheduler's default beside scheduler_address (its
// port + 2); "" if none.
func StackMonitorAddress(path string) string {
	ui := DefaultWebUI()
	if _, err := LoadFile(path, ui); err == nil && ui.MonitorAddress != "" {
		return ui.MonitorAddress
	}
	s := DefaultScheduler()
	if _, err := LoadFile(path, s); err != nil {
		return ""
	}
	return s.Monitor()
}
