package transport

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Tests of the owner's wait on the zmq fd (edge-triggered ZMQ_EVENTS
// protocol) and of Send calling zmq directly from any goroutine. A lost
// wake-up shows as a message that is never delivered, so each wait is
// bounded.

// Serial ping-pong: every message arrives while the owner is parked, and
// each Send races with the peer's reply (zmq_send may consume the fd
// signal of that reply). An earlier version lost a wake-up after ~8000
// round trips.
func TestSerialRoundTripsNoLostWakeup(t *testing.T) {
	n := 20_000
	if testing.Short() || raceEnabled {
		n = 3_000
	}
	for _, addr := range []string{"tcp://127.0.0.1:0", "inproc://wake-serial"} {
		t.Run(addr[:3], func(t *testing.T) {
			r, err := Bind(Router, addr, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			echo(r)
			d := connect(t, Dealer, r.Addr(), Options{})
			for i := range n {
				mustSend(t, d, u64(uint64(i)))
				msg := recvWithin(t, d, 5*time.Second)
				if binary.BigEndian.Uint64(msg[0]) != uint64(i) {
					t.Fatalf("round trip %d: got %q", i, msg)
				}
			}
		})
	}
}

// Many goroutines each doing round trips through one DEALER while its owner
// waits: Sends from several threads interleave with the owner's reads.
func TestConcurrentRoundTripsNoLostWakeup(t *testing.T) {
	const senders = 8
	per := 1000
	if testing.Short() || raceEnabled {
		per = 200
	}
	r := bind(t, Router, Options{})
	echo(r)
	d := connect(t, Dealer, r.Addr(), Options{})

	var mu sync.Mutex
	waiting := make(map[uint64]chan struct{}) // seq -> reply seen
	go func() {
		for msg := range d.Recv() {
			key := binary.BigEndian.Uint64(msg[0])<<32 | binary.BigEndian.Uint64(msg[1])
			mu.Lock()
			ch := waiting[key]
			delete(waiting, key)
			mu.Unlock()
			if ch != nil {
				close(ch)
			}
		}
	}()
	inParallel(t, senders, func(g int) error {
		for s := range per {
			key := uint64(g)<<32 | uint64(s)
			ch := make(chan struct{})
			mu.Lock()
			waiting[key] = ch
			mu.Unlock()
			if err := d.Send(u64(uint64(g)), u64(uint64(s))); err != nil {
				return err
			}
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				return fmt.Errorf("sender %d: no reply to %d", g, s)
			}
		}
		return nil
	})
}

// Senders flood a DEALER whose Recv channel nobody reads (the owner blocks
// delivering), while the peer's replies keep coming in: Sends must go out
// at once, and draining Recv later must yield every reply in order.
func TestSendersWhileOwnerBlockedOnRecv(t *testing.T) {
	const senders, per = 4, 500
	r := bind(t, Router, Options{})
	echo(r)
	d := connect(t, Dealer, r.Addr(), Options{RecvBuffer: 1})
	sendConcurrently(t, d, senders, per)
	expectInOrder(t, d, senders, per, 0, 10*time.Second)
}

// zmq refuses sends on a bound DEALER without peers (EAGAIN); concurrent
// Sends then queue behind the refused message, and the owner must resend
// them all, in order, when a peer connects (the fd signals POLLOUT).
func TestPendingSendsConcurrentThenPeer(t *testing.T) {
	const senders, per = 4, 100
	d := bind(t, Dealer, Options{})
	sendConcurrently(t, d, senders, per)
	r := connect(t, Router, d.Addr(), Options{})
	expectInOrder(t, r, senders, per, 1, 10*time.Second) // after the ROUTER's identity frame
}

// sendConcurrently has senders goroutines Send per messages each through e,
// [sender, seq] as two 8-byte frames, and waits for them all.
func sendConcurrently(t *testing.T, e *Endpoint, senders, per int) {
	t.Helper()
	inParallel(t, senders, func(g int) error {
		for s := range per {
			if err := e.Send(u64(uint64(g)), u64(uint64(s))); err != nil {
				return fmt.Errorf("sender %d: Send: %w", g, err)
			}
		}
		return nil
	})
}

// expectInOrder receives the senders*per messages of sendConcurrently on e
// (their [sender, seq] frames start at frame first) and checks that each
// sender's arrive whole and in order, each within d.
func expectInOrder(t *testing.T, e *Endpoint, senders, per, first int, d time.Duration) {
	t.Helper()
	next := make([]uint64, senders)
	for range senders * per {
		msg := recvWithin(t, e, d)
		g, s := binary.BigEndian.Uint64(msg[first]), binary.BigEndian.Uint64(msg[first+1])
		if s != next[g] {
			t.Fatalf("sender %d: got %d, want %d", g, s, next[g])
		}
		next[g]++
	}
}

// Close racing with Sends and with input: no panic, no hang, and Sends
// after Close fail.
func TestCloseRacesSendAndInput(t *testing.T) {
	for range 20 {
		r := bind(t, Router, Options{})
		echo(r)
		d, err := Connect(Dealer, r.Addr(), Options{RecvBuffer: 4})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for d.Send([]byte("x")) == nil {
				}
			}()
		}
		time.Sleep(2 * time.Millisecond)
		done := make(chan struct{})
		go func() { _ = d.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close hung")
		}
		wg.Wait()
		_ = r.Close()
	}
}
