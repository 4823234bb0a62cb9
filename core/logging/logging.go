// Package logging builds the zerolog loggers of every role. Records are
// rendered as one readable line each, in upstream Scaler's layout:
//
//	[INFO]2026-01-02 13:13:15+0000: scheduler: listening on tcp://127.0.0.1:8516
//
// followed by any structured fields as key=value.
package logging

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ComponentKey is the field that names the role or part that logged.
const ComponentKey = "component"

// Level returns the zerolog level of a configuration level name (any case:
// NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL).
func Level(name string) (zerolog.Level, bool) {
	for _, l := range configLevels {
		if strings.EqualFold(name, l.name) {
			return l.level, true
		}
	}
	return zerolog.NoLevel, false
}

// configLevels are the level names of the configuration and the zerolog
// level each stands for.
var configLevels = [...]struct {
	name  string
	level zerolog.Level
}{
	{"NOTSET", zerolog.TraceLevel},
	{"DEBUG", zerolog.DebugLevel},
	{"INFO", zerolog.InfoLevel},
	{"WARNING", zerolog.WarnLevel},
	{"ERROR", zerolog.ErrorLevel},
	{"CRITICAL", zerolog.FatalLevel},
}

// Upstream's four-letter level names.
var levelTags = map[string]string{
	"trace": "DEBG", "debug": "DEBG", "info": "INFO", "warn": "WARN",
	"error": "EROR", "fatal": "CTIC", "panic": "CTIC",
}

// Open returns a logger writing to every path ("/dev/stdout" and "-" mean
// standard output; other paths are files appended to, parent directories
// created) at the given level, tagged with component. No paths means no
// logging. Close the returned io.Closer at exit to close the files.
func Open(component string, paths []string, level string) (zerolog.Logger, io.Closer, error) {
	lvl, ok := Level(level)
	if !ok {
		return zerolog.Nop(), nopCloser{}, fmt.Errorf("unknown logging level %q", level)
	}
	var outs []io.Writer
	var files multiCloser
	console := false
	for _, p := range paths {
		if p == "-" || p == "/dev/stdout" {
			if !console {
				outs = append(outs, os.Stdout)
				console = true
			}
			continue
		}
		p = os.ExpandEnv(p)
		if strings.HasPrefix(p, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				p = filepath.Join(home, p[2:])
			}
		}
		if dir := filepath.Dir(p); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				files.Close()
				return zerolog.Nop(), nopCloser{}, fmt.Errorf("log path %s: %w", p, err)
			}
		}
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			files.Close()
			return zerolog.Nop(), nopCloser{}, fmt.Errorf("log path %s: %w", p, err)
		}
		files = append(files, f)
		outs = append(outs, f)
	}
	if len(outs) == 0 {
		return zerolog.Nop(), files, nil
	}
	w := &LineWriter{Out: io.MultiWriter(outs...)}
	return zerolog.New(w).Level(lvl).With().Str(ComponentKey, component).Logger(), files, nil
}

// ForTest returns a logger that renders lines into w at debug level.
func ForTest(component string, w io.Writer) zerolog.Logger {
	return zerolog.New(&LineWriter{Out: w}).Level(zerolog.DebugLevel).With().Str(ComponentKey, component).Logger()
}

// LineWriter turns zerolog's JSON records into readable lines.
type LineWriter struct {
	Out io.Writer
	Now func() time.Time // nil: time.Now

	mu sync.Mutex
}

func (w *LineWriter) Write(p []byte) (int, error) {
	var rec map[string]any
	dec := json.NewDecoder(strings.NewReader(string(p)))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.Out.Write(p)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	var b strings.Builder
	level, _ := rec[zerolog.LevelFieldName].(string)
	tag, ok := levelTags[level]
	if !ok {
		tag = "INFO"
	}
	b.WriteString("[" + tag + "]")
	b.WriteString(now().Format("2006-01-02 15:04:05-0700"))
	b.WriteString(": ")
	if c, ok := rec[ComponentKey].(string); ok && c != "" {
		b.WriteString(c + ": ")
	}
	msg, _ := rec[zerolog.MessageFieldName].(string)
	b.WriteString(msg)
	keys := make([]string, 0, len(rec))
	for k := range rec {
		switch k {
		case zerolog.LevelFieldName, zerolog.MessageFieldName, ComponentKey, zerolog.TimestampFieldName:
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, renderValue(rec[k]))
	}
	b.WriteByte('\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := io.WriteString(w.Out, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func renderValue(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" || strings.ContainsAny(x, " \t\n\"=") {
			return fmt.Sprintf("%q", x)
		}
		return x
	case json.Number:
		return x.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

type multiCloser []*os.File

func (m multiCloser) Close() error {
	var first error
	for _, f := range m {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
