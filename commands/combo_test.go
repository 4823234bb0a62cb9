package commands

import (
	"strings"
	"testing"
)

// The combo reads each half of its command line as its role does, and
// says which half is wrong; without the separator it runs nothing.
func TestComboCommandLine(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string // on stderr
	}{
		{[]string{"scaler", "combo", "tcp://127.0.0.1:1"}, "want SCHEDULER-OPTIONS -- CLUSTER-OPTIONS"},
		{[]string{"scaler", "combo", "tcp://127.0.0.1:1", "--no-such-option", "--", "tcp://127.0.0.1:1"}, "scaler_scheduler: error: unrecognized option --no-such-option"},
		{[]string{"scaler", "combo", "tcp://127.0.0.1:1", "--", "tcp://127.0.0.1:1", "-n", "x"}, "scaler_cluster: error:"},
	} {
		_, stderr, code := run(t, tc.argv...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: status %d, stderr %q; want %d and %q", tc.argv, code, stderr, exitUsage, tc.want)
		}
	}
	// Both halves parse (the dump of each is printed, nothing runs).
	stdout, stderr, code := run(t, "scaler", "combo", "tcp://127.0.0.1:1", "--dump-config", "--", "tcp://127.0.0.1:1", "-n", "3")
	if code != exitOK || !strings.Contains(stdout, "scheduler_address = 'tcp://127.0.0.1:1'") {
		t.Fatalf("status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
