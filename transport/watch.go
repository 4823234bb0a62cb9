package transport

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// ErrConnectionLost is wrapped by the error a Watch reports when its
// established connection ends.
var ErrConnectionLost = errors.New("transport: connection lost")

// The watch socket sends ZMTP heartbeats, so that a peer that vanishes
// without closing its TCP connection (host down, network cut) is noticed
// too. The peer's libzmq answers them in its io thread.
// (Variables so that tests can shorten them.)
var (
	watchHeartbeatInterval = 2 * time.Second
	watchHeartbeatTimeout  = 10 * time.Second
)

var watchSeq atomic.Uint64

// Watch keeps one idle zmq connection to a tcp address and reports, once,
// when that connection is lost. It learns about the connection from a zmq
// socket monitor.
//
// A connection counts as established when the zmq handshake with the peer
// has succeeded (ZMQ_EVENT_HANDSHAKE_SUCCEEDED), not at the TCP connect: a
// listener that is not a zmq peer is never "connected". Loss is the first
// ZMQ_EVENT_DISCONNECTED after that (the peer closed, crashed or missed its
// heartbeats). Until a connection is established zmq keeps retrying and
// nothing is reported; Connected tells whether it ever was.
//
// One goroutine owns the sockets; it stops after reporting the loss or on
// Close. This file uses only sharedContext and ParseAddress/isIPv6Host of
// the rest of the package.
type Watch struct {
	addr      string
	connected chan struct{} // closed at the first established connection
	lost      chan error    // capacity 1, at most one error
	done      chan struct{} // closed when run has exited and closed its sockets

	// Owned by run.
	sock   *zmq.Socket // the watched connection (DEALER, never sends)
	mon    *zmq.Socket // PAIR reading the monitor events of sock
	wakeRx *zmq.Socket // Close wakes run through it

	closeOnce sync.Once
	mu        sync.Mutex
	wakeTx    *zmq.Socket // nil once run has exited
}

// WatchConnection connects to addr (tcp://host:port) and starts watching
// the connection. It does not wait for the connection.
func WatchConnection(addr string) (_ *Watch, err error) {
	scheme, host, _, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	if scheme != "tcp" {
		return nil, fmt.Errorf("transport: watch %s: want a tcp address", addr)
	}
	ctx, err := sharedContext()
	if err != nil {
		return nil, err
	}
	var socks []*zmq.Socket // sock first
	defer func() {
		if err != nil && len(socks) > 0 {
			_ = socks[0].Monitor("", 0) // see shutdown
			for _, s := range socks {
				_ = s.Close()
			}
		}
	}()
	newSock := func(t zmq.Type) (*zmq.Socket, error) {
		s, err := ctx.NewSocket(t)
		if err != nil {
			return nil, fmt.Errorf("transport: watch %s: new %v socket: %w", addr, t, err)
		}
		socks = append(socks, s)
		return s, s.SetLinger(0)
	}

	sock, err := newSock(zmq.DEALER)
	if err != nil {
		return nil, err
	}
	if isIPv6Host(host) {
		if err := sock.SetIpv6(true); err != nil {
			return nil, err
		}
	}
	if err := sock.SetHeartbeatIvl(watchHeartbeatInterval); err != nil {
		return nil, err
	}
	if err := sock.SetHeartbeatTimeout(watchHeartbeatTimeout); err != nil {
		return nil, err
	}
	seq := watchSeq.Add(1)
	monAddr := fmt.Sprintf("inproc://transport-watch-monitor-%d", seq)
	if err := sock.Monitor(monAddr, zmq.EVENT_HANDSHAKE_SUCCEEDED|zmq.EVENT_DISCONNECTED); err != nil {
		return nil, fmt.Errorf("transport: watch %s: monitor: %w", addr, err)
	}
	mon, err := newSock(zmq.PAIR)
	if err != nil {
		return nil, err
	}
	// libzmq sends monitor events blocking, from whichever thread has the
	// event (often an io thread): an unbounded pipe means a burst of events
	// can never stall it.
	if err := mon.SetRcvhwm(0); err != nil {
		return nil, err
	}
	// Connected before sock connects, so that no event is missed (libzmq
	// drops monitor events while nobody is connected to the monitor).
	if err := mon.Connect(monAddr); err != nil {
		return nil, fmt.Errorf("transport: watch %s: connect monitor: %w", addr, err)
	}
	wakeAddr := fmt.Sprintf("inproc://transport-watch-wake-%d", seq)
	wakeRx, err := newSock(zmq.PAIR)
	if err != nil {
		return nil, err
	}
	if err := wakeRx.Bind(wakeAddr); err != nil {
		return nil, fmt.Errorf("transport: watch %s: bind wake socket: %w", addr, err)
	}
	wakeTx, err := newSock(zmq.PAIR)
	if err != nil {
		return nil, err
	}
	if err := wakeTx.Connect(wakeAddr); err != nil {
		return nil, fmt.Errorf("transport: watch %s: connect wake socket: %w", addr, err)
	}
	if err := sock.Connect(addr); err != nil {
		return nil, fmt.Errorf("transport: watch %s: connect: %w", addr, err)
	}
	w := &Watch{
		addr:      addr,
		connected: make(chan struct{}),
		lost:      make(chan error, 1),
		done:      make(chan struct{}),
		sock:      sock,
		mon:       mon,
		wakeRx:    wakeRx,
		wakeTx:    wakeTx,
	}
	go w.run()
	return w, nil
}

// Addr returns the watched address.
func (w *Watch) Addr() string { return w.addr }

// Connected is closed once a connection has been established.
func (w *Watch) Connected() <-chan struct{} { return w.connected }

// Lost delivers one error when the established connection is lost; it
// wraps ErrConnectionLost and names the address. (Any other error means
// watching itself failed, which only happens when zmq is shutting down.)
// Once Close has returned nothing new is delivered.
func (w *Watch) Lost() <-chan error { return w.lost }

// Close stops watching and closes the sockets. It is idempotent and safe
// to call from any goroutine, also after the loss was reported.
func (w *Watch) Close() {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		if w.wakeTx != nil {
			_, _ = w.wakeTx.SendBytes(nil, zmq.DONTWAIT)
		}
		w.mu.Unlock()
	})
	<-w.done
}

// run is the owner goroutine of sock, mon and wakeRx.
func (w *Watch) run() {
	defer w.shutdown()
	poller := zmq.NewPoller()
	poller.Add(w.mon, zmq.POLLIN)
	poller.Add(w.wakeRx, zmq.POLLIN)
	established := false
	for {
		polled, err := poller.PollAll(-1)
		if err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
				continue
			}
			w.lost <- fmt.Errorf("transport: watch %s: poll: %w", w.addr, err)
			return
		}
		if polled[1].Events&zmq.POLLIN != 0 {
			return // Close
		}
		if polled[0].Events&zmq.POLLIN == 0 {
			continue
		}
		for {
			ev, _, _, err := w.mon.RecvEvent(zmq.DONTWAIT)
			if err != nil {
				if zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) {
					break
				}
				w.lost <- fmt.Errorf("transport: watch %s: monitor: %w", w.addr, err)
				return
			}
			switch {
			case ev == zmq.EVENT_HANDSHAKE_SUCCEEDED && !established:
				established = true
				close(w.connected)
			case ev == zmq.EVENT_DISCONNECTED && established:
				w.lost <- fmt.Errorf("%w: %s", ErrConnectionLost, w.addr)
				return
			}
		}
	}
}

// shutdown closes the sockets when run stops.
func (w *Watch) shutdown() {
	w.mu.Lock()
	wakeTx := w.wakeTx
	w.wakeTx = nil // Close uses wakeTx only under mu
	w.mu.Unlock()
	_ = wakeTx.Close()
	// Stop the monitor before anything is closed. libzmq sends monitor events
	// blocking, and closing sock emits some later, from the reaper or an io
	// thread: if mon were gone by then, that thread would block for good and
	// every socket it serves would stall. zmq_socket_monitor(NULL) takes the
	// lock those sends hold, so no event is sent after it returns.
	_ = w.sock.Monitor("", 0)
	_ = w.sock.Close()
	_ = w.mon.Close()
	_ = w.wakeRx.Close()
	close(w.done)
}
