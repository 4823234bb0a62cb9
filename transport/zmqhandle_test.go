package transport

import (
	"testing"

	zmq "github.com/pebbe/zmq4"
)

// TestSocketHandleLayout guards zmqhandle.go: if pebbe/zmq4 changes the
// layout of zmq.Socket, the zero-copy paths silently fall back to copying,
// and this test says so loudly.
func TestSocketHandleLayout(t *testing.T) {
	if !handleLayoutOK {
		t.Fatal("pebbe/zmq4's zmq.Socket no longer starts with `soc unsafe.Pointer`: " +
			"update socketHandle in zmqhandle.go (zero-copy sends and receives are disabled)")
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
			t.Errorf("raw handle of a %v socket reports type %v (%v): socketHandle reads the wrong field", want, got, err)
		}
		_ = s.Close()
	}
}
