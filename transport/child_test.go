package transport

import (
	"os"
	"os/exec"
	"testing"

	zmq "github.com/pebbe/zmq4"
)

// Helpers shared by the package's tests.

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

// openSocket opens a Socket for a test and closes it when the test ends.
func openSocket(tb testing.TB, typ SocketType, addr string, bind bool, opt Options) *Socket {
	tb.Helper()
	s, err := Open(typ, addr, bind, opt)
	if err != nil {
		tb.Fatalf("Open %v %s: %v", typ, addr, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// rawSocket makes a plain pebbe/zmq4 socket on the shared context, for
// tests and benchmarks that compare with or stand in for a Socket; it is
// closed when the test ends.
func rawSocket(tb testing.TB, typ zmq.Type) *zmq.Socket {
	tb.Helper()
	ctx, err := sharedContext()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ctx.NewSocket(typ)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// newPoller makes a Poller watching fds for reading, closed when the test
// ends.
func newPoller(tb testing.TB, fds ...int) *Poller {
	tb.Helper()
	p, err := NewPoller()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	for _, fd := range fds {
		if err := p.Add(fd, false); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}
