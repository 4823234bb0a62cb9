// Package tempfile writes the files tests hand to the code under test (a
// configuration, a stack file) into the test's temporary folder. Like
// freeport it imports nothing of this module, so any package's own tests
// may use it.
package tempfile

import (
	"os"
	"path/filepath"
	"testing"
)

// Write writes text to name in the test's temporary folder and returns the
// file's path; the folder goes when the test ends.
func Write(t testing.TB, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
