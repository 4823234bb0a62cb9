package transport

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengris/scaler/internal/scalertest/expect"
	"github.com/opengris/scaler/internal/scalertest/freeport"
)

func watch(t *testing.T, addr string) *Watch {
	t.Helper()
	w, err := WatchConnection(addr)
	return expect.Opened(t, "WatchConnection "+addr, w, err)
}

func awaitConnected(t *testing.T, w *Watch) {
	t.Helper()
	select {
	case <-w.Connected():
	case err := <-w.Lost():
		t.Fatalf("lost before connected: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("watch of %s not connected within 10s", w.Addr())
	}
}

// quiet checks that w reports nothing for d.
func quiet(t *testing.T, w *Watch, d time.Duration) {
	t.Helper()
	select {
	case err := <-w.Lost():
		t.Fatalf("loss reported while the peer is up (or was never reached): %v", err)
	case <-time.After(d):
	}
}

// neverConnects checks that w reports neither a connection nor a loss for
// 1.5 s, and closes it.
func neverConnects(t *testing.T, w *Watch, why string) {
	t.Helper()
	quiet(t, w, 1500*time.Millisecond)
	select {
	case <-w.Connected():
		t.Fatal("connected to " + why)
	default:
	}
	closeWithin(t, w, 5*time.Second)
}

func awaitLost(t *testing.T, w *Watch, d time.Duration) error {
	t.Helper()
	select {
	case err := <-w.Lost():
		return err
	case <-time.After(d):
		t.Fatalf("loss of %s not reported within %s", w.Addr(), d)
		return nil
	}
}

func TestWatchReportsLossWhenPeerCloses(t *testing.T) {
	peer, err := Bind(Router, "tcp://127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = peer.Close() }()
	w := watch(t, peer.Addr())
	awaitConnected(t, w)
	quiet(t, w, 1500*time.Millisecond)

	_ = peer.Close()
	err = awaitLost(t, w, 15*time.Second)
	if !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), peer.Addr()) {
		t.Fatalf("loss error %q: want ErrConnectionLost naming %s", err, peer.Addr())
	}
	w.Close()
	w.Close() // idempotent
	select {
	case err := <-w.Lost():
		t.Fatalf("second report: %v", err)
	default:
	}
}

// A peer that never answers the zmq heartbeats (its connection hangs, as
// when its host is gone) is lost after the heartbeat timeout.
func TestWatchReportsLossOnHeartbeatTimeout(t *testing.T) {
	defer func(i, to time.Duration) { watchHeartbeatInterval, watchHeartbeatTimeout = i, to }(watchHeartbeatInterval, watchHeartbeatTimeout)
	watchHeartbeatInterval, watchHeartbeatTimeout = 200*time.Millisecond, time.Second

	peer := bind(t, Router, Options{})
	p := newFreezingProxy(t, strings.TrimPrefix(peer.Addr(), "tcp://"))
	w := watch(t, "tcp://"+p.addr())
	awaitConnected(t, w)
	quiet(t, w, 1500*time.Millisecond) // heartbeats are answered
	p.freeze()
	start := time.Now()
	err := awaitLost(t, w, 15*time.Second)
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("loss error %v", err)
	}
	t.Logf("lost %s after the connection froze", time.Since(start).Round(time.Millisecond))
}

func TestWatchNeverConnectedIsNotLost(t *testing.T) {
	neverConnects(t, watch(t, freeport.Addr(t)), "a port where nothing listens")
}

// A listener that is not a zmq peer accepts the TCP connection but never
// completes the handshake: that is not an established connection, and its
// closing the socket is not a loss.
func TestWatchNonZMQPeerIsNotConnected(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	accepted := make(chan struct{}, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 1000; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- struct{}{}:
			default:
			}
			_, _ = c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
			_ = c.Close()
		}
	}()
	defer func() { _ = l.Close(); wg.Wait() }()

	w := watch(t, "tcp://"+l.Addr().String())
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not connect to the listener")
	}
	neverConnects(t, w, "a listener that does not speak zmq")
}

func TestWatchRejectsNonTCP(t *testing.T) {
	for _, addr := range []string{"ipc:///tmp/x", "inproc://x", "tcp://127.0.0.1", "nonsense"} {
		if w, err := WatchConnection(addr); err == nil {
			w.Close()
			t.Errorf("WatchConnection(%q) succeeded", addr)
		}
	}
}

// Many watches opened and closed, some before they connect, some while
// connecting to a port where nothing listens: each new one still connects
// (closing must not leave an io thread blocked on a monitor event nobody
// reads), ordinary endpoints keep working, and no goroutine is left.
func TestWatchOpenCloseCycles(t *testing.T) {
	peer := bind(t, Router, Options{})
	echo(peer)
	down := freeport.Addr(t)
	runtime.GC()
	before := runtime.NumGoroutine()
	for i := 0; i < 30; i++ {
		up, err := WatchConnection(peer.Addr())
		if err != nil {
			t.Fatal(err)
		}
		never, err := WatchConnection(down)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			select {
			case <-up.Connected():
			case <-time.After(10 * time.Second):
				t.Fatalf("cycle %d: watch of %s not connected within 10s", i, up.Addr())
			}
		}
		up.Close()
		never.Close()
	}
	d, err := Connect(Dealer, peer.Addr(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, d, []byte("ping"))
	if msg := recvWithin(t, d, 10*time.Second); string(msg[0]) != "ping" {
		t.Fatalf("echo %q", msg)
	}
	_ = d.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after closing every watch, %d before", n, before)
	}
}

func closeWithin(t *testing.T, w *Watch, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Close did not return within %s", d)
	}
}

// freezingProxy forwards one TCP connection at a time to a target until
// frozen; then it stops forwarding in both directions but keeps the
// connections open, like a peer whose host went away.
type freezingProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFreezingProxy(t *testing.T, target string) *freezingProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *freezingProxy) addr() string { return p.l.Addr().String() }

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

func (p *freezingProxy) isFrozen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frozen
}

func (p *freezingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(u, c)
		go p.pipe(c, u)
	}
}

// pipe copies src to dst until the proxy freezes or closes.
func (p *freezingProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if p.isFrozen() {
			// Keep reading (and dropping) so the sender never sees back
			// pressure or a close, until the proxy is closed.
			if err != nil {
				return
			}
			continue
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezingProxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
