// Package programs finds the programs that tests start as processes: the
// scaler binary of this checkout and a Python interpreter with the scaler
// package. Like freeport it imports nothing of this module, so any
// package's own tests may use it.
package programs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RepoRoot is the checkout's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// buildDir holds the binary Scaler builds; Main removes it.
var buildDir string

// Main runs the package's tests and then removes the binary Scaler built:
// a package that calls Scaler calls Main from its TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var build = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "scaler-test-bin-")
	if err != nil {
		return "", err
	}
	buildDir = dir
	path := filepath.Join(dir, "scaler")
	cmd := exec.Command("go", "build", "-o", path, ".")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return path, nil
})

// Scaler is the scaler binary built from this checkout, once per test
// binary (see Main).
func Scaler(t testing.TB) string {
	t.Helper()
	path, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Python is an interpreter that can import the scaler package's processor
// and its dependencies: $SCALER_PYTHON, else <repo>/.venv/bin/python. The
// test is skipped, saying why, when there is none.
func Python(t testing.TB) string {
	t.Helper()
	path, why := python()
	if path == "" {
		t.Skipf("no Python interpreter with the scaler package (set SCALER_PYTHON or create .venv at the repo root, as .ci/setup does): %s", why)
	}
	return path
}

var python = sync.OnceValues(func() (path, why string) {
	cands := []string{}
	if p := os.Getenv("SCALER_PYTHON"); p != "" {
		cands = append(cands, p)
	}
	cands = append(cands, filepath.Join(RepoRoot(), ".venv", "bin", "python"))
	var whys []string
	for _, c := range cands {
		out, err := exec.Command(c, "-c", "import scaler.worker.processor, cloudpickle, zmq, msgpack").CombinedOutput()
		if err == nil {
			if strings.ContainsRune(c, filepath.Separator) {
				// A path works from any working directory (processes
				// started in another folder); a bare name is looked up.
				if abs, err := filepath.Abs(c); err == nil {
					c = abs
				}
			}
			return c, ""
		}
		whys = append(whys, fmt.Sprintf("%s: %v %s", c, err, strings.TrimSpace(string(out))))
	}
	return "", strings.Join(whys, "; ")
})
