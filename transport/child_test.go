package transport

import (
	"os"
	"os/exec"
	"testing"
)

// childEnv tells a test function that it runs as the child of runChild.
const childEnv = "TRANSPORT_TEST_CHILD"

// runChild runs the test function named test in a fresh test process (no
// other test has made a zmq context or touched the allocator there) with
// mode in childEnv and the extra environment, and returns what it printed.
func runChild(t *testing.T, test, mode string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s (%s) failed: %v\n%s", test, mode, err, out)
	}
	return string(out)
}

// childMode is the mode runChild gave this process; a test that is only a
// child skips in a normal run.
func childMode(t *testing.T) string {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("runs as a child of another test")
	}
	return mode
}
