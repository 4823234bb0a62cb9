package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// [top] timeout is read from TOML (upstream's CLI default always won), and
// the command line still overrides it.
func TestTopTimeoutFromTOML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "top.toml")
	if err := os.WriteFile(path, []byte("[top]\nmonitor_address = \"tcp://127.0.0.1:2347\"\ntimeout = 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"scaler_top", "-c", path}, "timeout = 9\n"},
		{[]string{"scaler_top", "-c", path, "-t", "3"}, "timeout = 3\n"},
		{[]string{"scaler_top", "tcp://127.0.0.1:2347"}, "timeout = 5\n"},
	} {
		out, errOut, code := run(t, append(tc.argv, "--dump-config")...)
		if code != exitOK || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want %q in:\n%s%s", tc.argv, code, tc.want, out, errOut)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[top]\nmonitor_address = \"tcp://127.0.0.1:2347\"\ntimeout = 0\n"), 0o644)
	if _, errOut, code := run(t, "scaler_top", "-c", bad, "--dump-config"); code != exitUsage || !strings.Contains(errOut, "timeout") {
		t.Errorf("timeout = 0: exit %d, %q", code, errOut)
	}
}
