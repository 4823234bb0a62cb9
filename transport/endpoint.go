package transport

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

const (
	// linger is how long pending outgoing messages are kept after Close:
	// first the owner tries to hand its queue to zmq for up to linger, then
	// ZMQ_LINGER lets libzmq flush its own queues in the background.
	linger = time.Second
	// maxRecvBatch bounds how many messages the owner reads per poll before
	// it services queued sends again, so a flood of input cannot starve
	// output. The socket is polled again immediately if more is ready.
	maxRecvBatch = 1024
)

var wakeSeq atomic.Uint64

// Endpoint is one zmq socket owned by one goroutine. See the package doc.
type Endpoint struct {
	typ  SocketType
	addr string

	zeroCopyRecv bool // Options.ZeroCopyRecv; see zerocopy.go

	// Options.WatchClosed (peers.go): owned by the run goroutine, except
	// the channel and the counter.
	watch         *closeWatch
	srcfd         int // source descriptor of the message recvMessage returned last
	closedCh      chan []byte
	closedDropped atomic.Uint64

	// Owned by the run goroutine.
	sock    *zmq.Socket
	wakeRx  *zmq.Socket
	pending [][][]byte // messages taken from queue, not yet accepted by zmq
	head    int        // first message of pending not fully sent
	partial int        // frames of pending[head] already sent

	recv chan [][]byte
	quit chan struct{} // closed by Close
	done chan struct{} // closed when run has exited and the socket is closed
	// kick (capacity 1) lets Send reach the owner while it is blocked on a
	// full recv channel, where it is not polling the wake socket.
	kick chan struct{}

	closeOnce sync.Once

	mu        sync.Mutex
	closed    bool
	signalled bool        // a wake-up is outstanding since the owner last took queue
	queue     [][][]byte  // messages from Send, in order
	wakeTx    *zmq.Socket // nil once the owner has exited
	err       error
}

// Bind creates a socket of type t bound to addr. Binding "tcp://host:0"
// (or ":*") picks a free port; Addr reports it.
func Bind(t SocketType, addr string, opt Options) (*Endpoint, error) {
	return newEndpoint(t, addr, opt, true)
}

// Connect creates a socket of type t connected to addr. zmq connects lazily
// and reconnects by itself; messages sent before the peer is up are queued
// (ZMQ_IMMEDIATE stays off on purpose) and delivered once it is.
func Connect(t SocketType, addr string, opt Options) (*Endpoint, error) {
	return newEndpoint(t, addr, opt, false)
}

func newEndpoint(t SocketType, addr string, opt Options, bind bool) (_ *Endpoint, err error) {
	if opt.RecvBuffer < 0 {
		return nil, fmt.Errorf("transport: negative RecvBuffer %d", opt.RecvBuffer)
	}
	if opt.RecvBuffer == 0 {
		opt.RecvBuffer = DefaultRecvBuffer
	}
	if opt.RouterMandatory {
		return nil, errors.New("transport: RouterMandatory is for a Socket; an Endpoint drops messages to unknown peers")
	}
	if opt.WatchClosed && (t != Router || !bind) {
		return nil, fmt.Errorf("transport: WatchClosed needs a bound ROUTER, not %v (bind %v)", t, bind)
	}
	sock, resolved, err := openZMQ(t, addr, bind, opt)
	if err != nil {
		return nil, err
	}
	ctx, err := sharedContext()
	if err != nil {
		return nil, err
	}
	socks := []*zmq.Socket{sock}
	defer func() {
		if err != nil {
			for _, s := range socks {
				_ = s.SetLinger(0)
				_ = s.Close()
			}
		}
	}()
	newSock := func(zt zmq.Type) (*zmq.Socket, error) {
		s, err := ctx.NewSocket(zt)
		if err != nil {
			return nil, fmt.Errorf("transport: new %v socket: %w", zt, err)
		}
		socks = append(socks, s)
		if err := s.SetSndhwm(0); err != nil {
			return nil, err
		}
		if err := s.SetRcvhwm(0); err != nil {
			return nil, err
		}
		return s, nil
	}

	wakeAddr := fmt.Sprintf("inproc://transport-wake-%d", wakeSeq.Add(1))
	wakeRx, err := newSock(zmq.PAIR)
	if err != nil {
		return nil, err
	}
	wakeTx, err := newSock(zmq.PAIR)
	if err != nil {
		return nil, err
	}
	for _, s := range []*zmq.Socket{wakeRx, wakeTx} {
		if err := s.SetLinger(0); err != nil {
			return nil, err
		}
	}
	if err := wakeRx.Bind(wakeAddr); err != nil {
		return nil, fmt.Errorf("transport: bind wake socket: %w", err)
	}
	if err := wakeTx.Connect(wakeAddr); err != nil {
		return nil, fmt.Errorf("transport: connect wake socket: %w", err)
	}

	e := &Endpoint{
		typ:    t,
		addr:   resolved,
		sock:   sock,
		wakeRx: wakeRx,
		wakeTx: wakeTx,
		recv:   make(chan [][]byte, opt.RecvBuffer),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
	}
	e.zeroCopyRecv = opt.ZeroCopyRecv
	if opt.WatchClosed {
		if e.watch, err = newCloseWatch(sock); err != nil {
			return nil, err
		}
		e.closedCh = make(chan []byte, DefaultRecvBuffer)
	}
	go e.run()
	return e, nil
}

// Addr returns the endpoint: for binds the resolved one (ZMQ_LAST_ENDPOINT,
// with the real port), for connects the address as given.
func (e *Endpoint) Addr() string { return e.addr }

// Type returns the socket type.
func (e *Endpoint) Type() SocketType { return e.typ }

// Send queues one multipart message for the owner goroutine. It is safe
// from any goroutine, never blocks on the network, and keeps the order of
// messages per calling goroutine (in fact one total order). For ROUTER,
// frames[0] is the peer identity; messages to unknown peers are dropped by
// zmq. The frames are not copied until zmq takes them, and frames of at
// least ZeroCopyMin bytes are not copied at all (zmq reads them while it
// writes them to the network), so the caller must not modify them
// afterwards. A held frame (see Retain) stays valid until it is sent.
func (e *Endpoint) Send(frames ...[]byte) error {
	if len(frames) == 0 {
		return ErrEmptyMessage
	}
	if e.typ == Sub {
		return ErrCannotSend
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	retainQueued(frames)
	e.queue = append(e.queue, frames)
	if !e.signalled {
		e.signalled = true
		e.wakeLocked()
	}
	e.mu.Unlock()
	return nil
}

// wakeLocked wakes the owner, whether it is polling or blocked on a full
// Recv channel. Caller holds e.mu.
func (e *Endpoint) wakeLocked() {
	if e.wakeTx != nil {
		// Cannot return EAGAIN (HWM 0, peer bound); an error here means the
		// context is going away, and the owner notices that itself.
		_, _ = e.wakeTx.SendBytes(nil, zmq.DONTWAIT)
	}
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Recv returns the channel of received messages, in arrival order. ROUTER
// messages start with the peer identity. The channel is closed after Close
// or a fatal socket error (see Err). A PUB endpoint never receives.
func (e *Endpoint) Recv() <-chan [][]byte { return e.recv }

// Err returns the fatal socket error that stopped the endpoint, or nil
// (also after a normal Close).
func (e *Endpoint) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Close stops the owner goroutine and closes the socket. Messages already
// queued by Send are handed to zmq (waiting up to about a second if zmq
// cannot take them, e.g. a bound DEALER without peers) and zmq then lingers
// up to a second to flush them. Close does not need anyone to read Recv.
// It is idempotent and safe concurrently with Send; later Sends return
// ErrClosed.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		close(e.quit)
		e.wakeLocked()
		e.mu.Unlock()
	})
	<-e.done
	return nil
}

// run is the owner goroutine: the only code that touches e.sock and e.wakeRx.
func (e *Endpoint) run() {
	var runErr error
	defer func() { e.shutdown(runErr) }()

	in := zmq.POLLIN
	if e.typ == Pub {
		in = 0
	}
	poller := zmq.NewPoller()
	poller.Add(e.sock, in)
	poller.Add(e.wakeRx, zmq.POLLIN)
	if e.watch != nil {
		poller.Add(e.watch.mon, zmq.POLLIN) // item 2
	}
	events := in
	for {
		want := in
		if e.head < len(e.pending) {
			want |= zmq.POLLOUT // zmq refused a send (EAGAIN); resume when writable
		}
		if want != events {
			if _, err := poller.Update(0, want); err != nil {
				runErr = fmt.Errorf("transport: poller update: %w", err)
				return
			}
			events = want
		}
		// Yield before blocking in cgo: a goroutine we just readied by
		// delivering on Recv sits in this P's runnext, and while we block in
		// zmq_poll the P is in syscall state, so that goroutine would wait
		// for sysmon to retake the P (measured: round trip 384 -> 170 µs).
		runtime.Gosched()
		polled, err := poller.PollAll(-1)
		if err != nil {
			if isErrno(err, syscall.EINTR) {
				continue
			}
			runErr = fmt.Errorf("transport: poll: %w", err)
			return
		}
		if polled[1].Events&zmq.POLLIN != 0 {
			if err := e.drainWake(); err != nil {
				runErr = err
				return
			}
			select {
			case <-e.quit:
				return
			default:
			}
			e.takeQueue()
		}
		if err := e.flush(); err != nil {
			runErr = err
			return
		}
		if e.watch != nil && polled[2].Events&zmq.POLLIN != 0 {
			if err := e.watch.drain(); err != nil {
				runErr = err
				return
			}
			e.deliverClosed()
		}
		if polled[0].Events&zmq.POLLIN != 0 {
			ok, err := e.drainInput()
			if err != nil {
				runErr = err
			}
			if !ok {
				return
			}
		}
	}
}

// drainWake consumes all wake-up messages. (pebbe/zmq4 retries calls that
// EINTR interrupts on the shared context, see newContext; only the raw
// libzmq calls of zerocopy.go see EINTR.)
func (e *Endpoint) drainWake() error {
	for {
		_, err := e.wakeRx.RecvBytes(zmq.DONTWAIT)
		switch {
		case err == nil:
		case isErrno(err, syscall.EAGAIN):
			return nil
		default:
			return fmt.Errorf("transport: wake socket: %w", err)
		}
	}
}

// takeQueue moves the messages queued by Send to the owner's pending list.
func (e *Endpoint) takeQueue() {
	e.mu.Lock()
	q := e.queue
	e.signalled = false
	if len(e.pending) == 0 {
		// Swap buffers: Send appends to the owner's old (cleared) slice.
		e.queue, e.pending, e.head = e.pending, q, 0
	} else {
		e.pending = append(e.pending, q...)
		clear(q)
		e.queue = q[:0]
	}
	e.mu.Unlock()
}

// flush hands pending messages to zmq without blocking. It stops at EAGAIN
// (the loop then polls for POLLOUT) and returns only fatal errors.
func (e *Endpoint) flush() error {
	for e.head < len(e.pending) {
		msg := e.pending[e.head]
		for e.partial < len(msg) {
			flags := zmq.DONTWAIT
			if e.partial < len(msg)-1 {
				flags |= zmq.SNDMORE
			}
			if err := e.sendFrame(msg[e.partial], flags); err != nil {
				switch {
				case isErrno(err, syscall.EAGAIN):
					return nil
				case isErrno(err, syscall.EINTR):
					continue
				case isErrno(err, syscall.EHOSTUNREACH) && e.partial == 0:
					// Only with ZMQ_ROUTER_MANDATORY, which an Endpoint refuses: drop.
					releaseQueued(msg[e.partial:])
					e.partial = len(msg)
					continue
				}
				return fmt.Errorf("transport: send on %v %s: %w", e.typ, e.addr, err)
			}
			e.partial++
		}
		e.pending[e.head] = nil // let the frames be collected
		e.head++
		e.partial = 0
	}
	e.pending = e.pending[:0]
	e.head = 0
	return nil
}

// drainInput reads every ready message (up to maxRecvBatch) and delivers
// it. ok is false when the owner must stop (Close, or err != nil).
func (e *Endpoint) drainInput() (ok bool, err error) {
	for i := 0; i < maxRecvBatch; i++ {
		msg, err := e.recvMessage()
		switch {
		case isErrno(err, syscall.EAGAIN):
			return true, nil
		case err != nil: // recvMessage retries after EINTR itself
			return false, fmt.Errorf("transport: recv on %v %s: %w", e.typ, e.addr, err)
		}
		if e.watch != nil && len(msg) > 0 {
			if err := e.watch.seen(e.srcfd, msg[0]); err != nil {
				ReleaseMessage(msg)
				return false, err
			}
			e.deliverClosed()
		}
		if ok, err := e.deliver(msg); !ok {
			ReleaseMessage(msg)
			return false, err
		}
	}
	return true, nil
}

// deliver puts msg on the Recv channel. While the channel is full it keeps
// serving Send (through kick) so that sends are not delayed by a slow
// reader, and it gives up when Close is called.
func (e *Endpoint) deliver(msg [][]byte) (ok bool, err error) {
	select {
	case e.recv <- msg:
		return true, nil
	default:
	}
	for {
		select {
		case e.recv <- msg:
			return true, nil
		case <-e.quit:
			return false, nil
		case <-e.kick:
			e.takeQueue()
			if err := e.flush(); err != nil {
				return false, err
			}
		}
	}
}

// shutdown runs on the owner goroutine when it stops.
func (e *Endpoint) shutdown(runErr error) {
	e.mu.Lock()
	e.closed = true
	e.err = runErr
	wakeTx := e.wakeTx
	e.wakeTx = nil // Send and Close use wakeTx only under mu
	e.mu.Unlock()
	_ = wakeTx.Close()

	if runErr == nil {
		e.takeQueue()
		e.flushWithin(linger)
	} else {
		_ = e.sock.SetLinger(0)
	}
	if e.watch != nil {
		e.watch.close(e.sock)
	}
	_ = e.sock.Close() // returns at once; libzmq keeps flushing for ZMQ_LINGER
	_ = e.wakeRx.Close()
	e.releaseUnsent()
	e.pending, e.queue = nil, nil
	close(e.recv)
	if e.closedCh != nil {
		close(e.closedCh)
	}
	close(e.done)
}

// flushWithin hands the pending messages to zmq, waiting for the socket to
// become writable for at most d in total.
func (e *Endpoint) flushWithin(d time.Duration) {
	deadline := time.Now().Add(d)
	var poller *zmq.Poller
	for {
		if err := e.flush(); err != nil || e.head >= len(e.pending) {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		if poller == nil {
			poller = zmq.NewPoller()
			poller.Add(e.sock, zmq.POLLOUT)
		}
		if _, err := poller.Poll(max(left, time.Millisecond)); err != nil && !isErrno(err, syscall.EINTR) {
			return
		}
	}
}

// isErrno reports whether err is the zmq/system error number n.
func isErrno(err error, n syscall.Errno) bool {
	var zn zmq.Errno
	if errors.As(err, &zn) {
		return zn == zmq.Errno(n)
	}
	var sn syscall.Errno
	if errors.As(err, &sn) {
		return sn == n
	}
	return false
}
