package transport

import (
	"os"
	"regexp"
	"testing"

	zmq "github.com/pebbe/zmq4"
)

// TestSocketHandleLayout guards zmqhandle.go: if pebbe/zmq4 changes the
// layout of zmq.Socket, the zero-copy paths silently fall back to copying,
// and this test says so loudly.
func TestSocketHandleLayout(t *testing.T) {
	if p := handleLayoutProblem(); p != "" {
		t.Fatalf("pebbe/zmq4 (go.mod: %s; socketHandle was checked against %s): zmq.Socket %s; "+
			"socketHandle in zmqhandle.go reads the unexported field soc (unsafe.Pointer at offset 0): "+
			"update it for the new layout (until then zero-copy sends and receives are disabled)",
			requiredZMQ4(t), zmq4Checked, p)
	}
	ctx, err := sharedContext()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []zmq.Type{zmq.ROUTER, zmq.DEALER, zmq.PUB, zmq.SUB, zmq.PAIR} {
		s, err := ctx.NewSocket(typ)
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.GetType()
		if err != nil {
			t.Fatal(err)
		}
		got, err := rawSocketType(s)
		if err != nil || got != want {
			t.Errorf("pebbe/zmq4 %s: raw handle of a %v socket reports type %v (%v): socketHandle reads the wrong field",
				zmq4Checked, want, got, err)
		}
		_ = s.Close()
	}
}

// TestZMQ4VersionPinned keeps go.mod on the pebbe/zmq4 version that
// socketHandle was checked against: moving to another version means reading
// its zmq.Socket first, then changing zmq4Checked.
func TestZMQ4VersionPinned(t *testing.T) {
	if got := requiredZMQ4(t); got != zmq4Checked {
		t.Fatalf("go.mod requires github.com/pebbe/zmq4 %s, but zmqhandle.go's socketHandle was checked against %s: "+
			"check that zmq.Socket still starts with `soc unsafe.Pointer` in %s, then set zmq4Checked", got, zmq4Checked, got)
	}
}

// requiredZMQ4 is the pebbe/zmq4 version that go.mod requires.
func requiredZMQ4(t *testing.T) string {
	t.Helper()
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?github\.com/pebbe/zmq4\s+(\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/pebbe/zmq4")
	}
	return string(m[1])
}
