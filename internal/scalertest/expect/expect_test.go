package expect

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"
)

// fake records failures instead of stopping the test, so the checks' own
// failures can be asserted; the checks call only these methods.
type fake struct {
	testing.TB
	failed bool
}

func (f *fake) Helper()               {}
func (f *fake) Errorf(string, ...any) { f.failed = true }
func (f *fake) Fatalf(string, ...any) { f.failed = true }
func (f *fake) Fatal(...any)          { f.failed = true }

func TestErr(t *testing.T) {
	for _, c := range []struct {
		err      error
		want     string
		fails    bool
		finished bool
	}{
		{nil, "", false, false},
		{errors.New("port 7 out of range"), "out of range", false, true},
		{errors.New("boom"), "", true, false},
		{nil, "out of range", true, true},
		{errors.New("other"), "out of range", true, true},
	} {
		f := &fake{}
		if done := Err(f, c.err, c.want); done != c.finished || f.failed != c.fails {
			t.Errorf("Err(%v, %q) = %v, failed %v", c.err, c.want, done, f.failed)
		}
	}
}

func TestGoldenWritesThenCompares(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	f := &fake{}
	Golden(f, path, []byte("one\n"), true)
	Golden(f, path, []byte("one\n"), false)
	if f.failed {
		t.Fatal("a written golden file did not match")
	}
	Golden(f, path, []byte("two\n"), false)
	if !f.failed {
		t.Fatal("different output passed")
	}
}

func TestParsesWithARealParser(t *testing.T) {
	Parses(t, "strconv.Atoi", strconv.Atoi, []Case[string, int]{{"12", 12, false}, {"x", 0, true}})
}
