// Package expect holds the checks that table tests and golden-file tests
// repeat: an error that must mention something (or must not happen), a
// parser's table of good and bad inputs, and output compared with a golden
// file. Like freeport it imports nothing of this module, so any package's
// own tests may use it.
package expect

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Err checks err against a table case's expected error: with want set, err
// must mention it and Err returns true (the case is done); with want empty,
// err must be nil and Err returns false (go on checking the result).
func Err(t testing.TB, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return false
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one mentioning %q", err, want)
	}
	return true
}

// Case is one input of a parser table: a Bad input must be refused, any
// other must give Want.
type Case[In, Out any] struct {
	In   In
	Want Out
	Bad  bool
}

// Parses runs parse over the cases; name is the parser's, for messages.
func Parses[In, Out any](t *testing.T, name string, parse func(In) (Out, error), cases []Case[In, Out]) {
	t.Helper()
	for _, c := range cases {
		got, err := parse(c.In)
		switch {
		case c.Bad && err == nil:
			t.Errorf("%s(%#v) = %#v, want an error", name, c.In, got)
		case !c.Bad && err != nil:
			t.Errorf("%s(%#v): %v", name, c.In, err)
		case !c.Bad && !reflect.DeepEqual(got, c.Want):
			t.Errorf("%s(%#v) = %#v, want %#v", name, c.In, got, c.Want)
		}
	}
}

// Golden compares got with the golden file at path; with update it writes
// got there first (creating the folder), for review in the diff.
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("output differs from %s; run with -update and review the diff.\ngot:\n%s", path, got)
	}
}

// Opened returns v and closes it when the test ends; a non-nil err (from
// opening v) fails the test first, naming what was opened.
func Opened[T interface{ Close() }](t testing.TB, what string, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Cleanup(v.Close)
	return v
}
