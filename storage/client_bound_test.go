package storage

import (
	"errors"
	"testing"
)

// A server that never answers (nothing listens here) gets at most
// MaxCallsInFlight calls from one client; the next is refused at once
// with ErrBusy instead of queuing without end.
func TestClientBoundsCallsInFlight(t *testing.T) {
	c, err := Dial("tcp://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := make([]byte, 32)
	for i := 0; i < MaxCallsInFlight; i++ {
		select {
		case r := <-c.DeleteAsync(id):
			t.Fatalf("call %d answered at once: %v", i, r.Err)
		default:
		}
	}
	select {
	case r := <-c.DeleteAsync(id):
		if !errors.Is(r.Err, ErrBusy) {
			t.Fatalf("the call past the bound: %v, want ErrBusy", r.Err)
		}
	default:
		t.Fatal("the call past the bound was taken")
	}
	c.mu.Lock()
	n := len(c.pending)
	c.mu.Unlock()
	if n != MaxCallsInFlight {
		t.Fatalf("%d calls pending, want %d", n, MaxCallsInFlight)
	}
}
