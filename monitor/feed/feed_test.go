package feed

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/wait"
	"github.com/opengris/scaler/transport"
)

// pub is a real PUB socket on 127.0.0.1 standing in for the scheduler.
func pub(t *testing.T) *transport.Endpoint {
	t.Helper()
	p, err := transport.Bind(transport.Pub, "tcp://127.0.0.1:0", transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func start(t *testing.T, addr string, timeout time.Duration) *Monitor {
	t.Helper()
	m := New(Options{Address: addr, Timeout: timeout, Log: zerolog.Nop()})
	wait.Go(t, "Run", 10*time.Second, true, m.Run)
	return m
}

// until publishes send every 50 ms until cond holds (a SUB joins a PUB
// some time after connecting, so early messages are lost by design).
func until(t *testing.T, m *Monitor, send func(), cond func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if send != nil {
			send()
		}
		if s := m.State(); cond(s) {
			return s
		}
		select {
		case <-m.Changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("condition not met within 20 s; state %+v", m.State())
	return State{}
}

func send(t *testing.T, p *transport.Endpoint, msg protocol.Message) {
	t.Helper()
	if err := p.Send(protocol.MustEncode(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestSimpleSubscriber(t *testing.T) {
	p := pub(t)
	m := start(t, p.Addr(), 5*time.Second)
	if s := m.State(); !s.Stale || s.Status != nil || !s.Updated.IsZero() {
		t.Fatalf("before any message: %+v", s)
	}
	st := &protocol.StateScheduler{ObjectCount: 7}
	junk := func() {
		// Garbage, an unknown kind, a truncated status and a two-frame
		// message: skipped, the feed goes on.
		for _, frames := range [][][]byte{{{0xff, 1}}, {{}}, {protocol.MustEncode(st)[:5]}, {{1}, {2}}} {
			if err := p.Send(frames...); err != nil {
				t.Fatal(err)
			}
		}
		send(t, p, st)
	}
	s := until(t, m, junk, func(s State) bool { return s.Status != nil })
	if s.Stale || s.Updated.IsZero() || s.Status.ObjectCount != 7 || s.Address != p.Addr() {
		t.Fatalf("after a status: %+v", s)
	}
	// The newest status wins.
	st2 := &protocol.StateScheduler{ObjectCount: 8}
	until(t, m, func() { send(t, p, st2) }, func(s State) bool { return s.Status.ObjectCount == 8 })
}
