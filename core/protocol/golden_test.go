package protocol

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/protocol/*.msgpack from goldenMessages()")

// goldenDir holds one file per message kind: the exact frame (kind byte +
// msgpack body) of a fully populated message. Other implementations (the
// Python package) read the same files.
var goldenDir = filepath.Join("..", "..", "testdata", "protocol")

// goldens maps a message name (its Go type name, equal to Kind.String) to a
// fully populated, deterministic instance. Test files add their messages in
// init functions, so every file that registers a kind also provides its
// golden value.
var goldens = map[string]Message{}

func addGolden(m Message) {
	name := m.Kind().String()
	if _, dup := goldens[name]; dup {
		panic("golden message " + name + " added twice")
	}
	goldens[name] = m
}

// goldenMessages returns the golden instances by message name.
func goldenMessages() map[string]Message { return goldens }

// registeredKinds lists every kind that has a factory.
func registeredKinds() []Kind {
	var ks []Kind
	for k := 0; k < len(factories); k++ {
		if factories[k] != nil {
			ks = append(ks, Kind(k))
		}
	}
	return ks
}

func goldenPath(name string) string { return filepath.Join(goldenDir, name+".msgpack") }

func TestGoldenFiles(t *testing.T) {
	names := make([]string, 0, len(goldens))
	for name := range goldens {
		names = append(names, name)
	}
	sort.Strings(names)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			if err := os.WriteFile(goldenPath(name), MustEncode(goldens[name]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			want := goldens[name]
			assertFullyPopulated(t, reflect.ValueOf(want).Elem(), name)
			frame, err := os.ReadFile(goldenPath(name))
			if err != nil {
				t.Fatalf("%v (run go test ./core/protocol -run TestGoldenFiles -update)", err)
			}
			got, err := Decode(frame)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded golden differs:\n got %#v\nwant %#v", got, want)
			}
			if again := MustEncode(got); !bytes.Equal(again, frame) {
				t.Errorf("re-encoding is not byte-identical:\n got %x\nwant %x", again, frame)
			}
			if enc := MustEncode(want); !bytes.Equal(enc, frame) {
				t.Errorf("encoding goldenMessages()[%q] differs from the file (run with -update?)", name)
			}
		})
	}
}

// TestGoldenCoverage demands a golden value and file for every registered
// kind, and no stray golden file.
func TestGoldenCoverage(t *testing.T) {
	registered := map[string]bool{}
	for _, k := range registeredKinds() {
		m := New(k)
		name := reflect.TypeOf(m).Elem().Name()
		if name != k.String() {
			t.Errorf("kind %d: type %s but Kind.String() = %q", k, name, k.String())
		}
		if m.Kind() != k {
			t.Errorf("kind %d: New returns %s whose Kind() is %d", k, name, m.Kind())
		}
		registered[name] = true
		g, ok := goldens[name]
		if !ok {
			t.Errorf("registered message %s (kind %d) has no golden value: add it in a _test.go init with addGolden", name, k)
			continue
		}
		if g.Kind() != k {
			t.Errorf("golden %s has kind %d, want %d", name, g.Kind(), k)
		}
		if _, err := os.Stat(goldenPath(name)); err != nil && !*update {
			t.Errorf("registered message %s has no golden file: %v", name, err)
		}
	}
	for name := range goldens {
		if !registered[name] {
			t.Errorf("golden value %s is not a registered message", name)
		}
	}
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.msgpack"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".msgpack")
		if !registered[name] {
			t.Errorf("stray golden file %s: no registered message named %s", f, name)
		}
	}
}

// assertFullyPopulated fails when any field, at any depth, holds its zero
// value (empty slices and maps included), so golden files exercise every
// field. Inside a list a field counts as populated when any element sets it,
// so lists may mix enum values such as ArgumentTask (0) and ArgumentObjectID.
func assertFullyPopulated(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	for _, p := range zeroPaths(v, path) {
		t.Errorf("golden %s is zero or empty", p)
	}
}

func zeroPaths(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Struct:
		var out []string
		for i := 0; i < v.NumField(); i++ {
			out = append(out, zeroPaths(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
		return out
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return []string{path}
		}
		if v.Kind() == reflect.Map || v.Type().Elem().Kind() == reflect.Uint8 {
			return nil
		}
		// Keep only the paths that are zero in every element.
		count := map[string]int{}
		for i := 0; i < v.Len(); i++ {
			for _, p := range zeroPaths(v.Index(i), path+"[]") {
				count[p]++
			}
		}
		var out []string
		for p, n := range count {
			if n == v.Len() {
				out = append(out, p)
			}
		}
		sort.Strings(out)
		return out
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}
