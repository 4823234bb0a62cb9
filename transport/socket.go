package transport

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Socket is a zmq socket owned by one goroutine, for event loops that wait
// on several sockets and file descriptors at once (see Poller). Unlike an
// Endpoint it has no goroutine of its own: Send hands frames straight to
// zmq and TryRecv reads straight from it, so a message costs no goroutine
// hand-off and no wake-up socket. Every method must be called from the
// owning goroutine.
//
// Waiting: add Fd to a Poller for reading. The descriptor only says that
// the socket's state may have changed, and any Send or TryRecv may consume
// that signal, so a loop must drain TryRecv until it reports nothing and
// call Pending before it blocks (see Pending).
type Socket struct {
	typ  SocketType
	addr string
	sock *zmq.Socket
	fd   int

	// Messages zmq refused with EAGAIN (a DEALER without a connected peer
	// can do that only if a HWM is reached, which never happens at HWM 0,
	// but the socket API allows it); sent first by the next Flush.
	pending [][][]byte
	partial int // frames of pending[0] already sent

	recv partsBuf

	// With Options.RouterMandatory (peers.go has the rest): messages
	// to peers at their high-water mark, in order per peer, and the peers
	// found unreachable since the last TakeUnreachable.
	mandatory       bool
	backlog         map[string][][][]byte
	backlogBytes    map[string]int // bytes of each backlog
	maxBacklogBytes int            // Options.MaxPeerBacklogBytes
	peerBacklogMax  map[string]int // SetPeerBacklogBytes: peers with a bound of their own
	unreachable     []Unreachable
	unreachIdx      map[string]int // peer -> index in unreachable

	watch *closeWatch // Options.WatchClosed; nil otherwise
}

// Open creates a Socket of type t bound to (bind) or connected to addr.
func Open(t SocketType, addr string, bind bool, opt Options) (*Socket, error) {
	sock, resolved, err := openZMQ(t, addr, bind, opt)
	if err != nil {
		return nil, err
	}
	fd, err := sock.GetFd()
	if err != nil {
		_ = sock.SetLinger(0)
		_ = sock.Close()
		return nil, fmt.Errorf("transport: ZMQ_FD of %s: %w", addr, err)
	}
	so := &Socket{typ: t, addr: resolved, sock: sock, fd: fd, mandatory: opt.RouterMandatory && t == Router,
		maxBacklogBytes: opt.MaxPeerBacklogBytes}
	if opt.WatchClosed {
		if t != Router || !bind {
			_ = sock.SetLinger(0)
			_ = sock.Close()
			return nil, fmt.Errorf("transport: WatchClosed needs a bound ROUTER, not %v (bind %v)", t, bind)
		}
		if so.watch, err = newCloseWatch(sock); err != nil {
			_ = sock.SetLinger(0)
			_ = sock.Close()
			return nil, err
		}
	}
	return so, nil
}

// Addr returns the resolved bound address, or the address connected to.
func (s *Socket) Addr() string { return s.addr }

// BindAlso binds the socket to one more endpoint, so that peers may connect
// at either address (a scheduler's ipc:// endpoint for local workers).
func (s *Socket) BindAlso(addr string) error {
	if err := s.sock.Bind(addr); err != nil {
		return fmt.Errorf("transport: bind to %s: %w", addr, err)
	}
	return nil
}

// Fd returns the descriptor to poll for reading (ZMQ_FD).
func (s *Socket) Fd() int { return s.fd }

// Send hands one multipart message to zmq without blocking. For ROUTER,
// frames[0] is the peer identity; messages to unknown peers are dropped
// (by zmq, silently), unless the socket has Options.RouterMandatory. If
// zmq cannot take it now, the message is kept and sent by Flush.
//
// With Options.RouterMandatory, a message to a peer that is not connected
// is not queued: Send returns ErrUnreachable and TakeUnreachable reports
// the peer. A message to a peer at its high-water mark waits in that
// peer's backlog (messages to other peers go on); Flush sends it when the
// peer has room. A backlog holds at most MaxPeerBacklog messages; a
// message beyond that drops the peer's whole backlog, which is reported
// as unreachable (so the caller knows exactly what did not go out).
func (s *Socket) Send(frames ...[]byte) error {
	if err := s.checkSend(frames); err != nil {
		return err
	}
	if s.mandatory {
		return s.sendRouted(frames)
	}
	s.pending = append(s.pending, frames)
	return s.Flush()
}

// checkSend says why Send or TrySend cannot take a message, or nil.
func (s *Socket) checkSend(frames [][]byte) error {
	switch {
	case len(frames) == 0:
		return ErrEmptyMessage
	case s.typ == Sub:
		return ErrCannotSend
	case s.sock == nil:
		return ErrClosed
	}
	return nil
}

// TrySend hands one message to zmq without blocking and without keeping
// it: if zmq cannot take it now (an XPUB with Options.XPubNoDrop whose
// subscriber is at its send HWM) it returns ErrFull, and the caller decides
// what to do with the message (the scheduler counts it as dropped status).
// Messages left by Send are flushed first; while some remain, TrySend
// returns ErrFull too, so that order is kept. Not for a RouterMandatory
// socket, whose Send already keeps a per-peer backlog.
func (s *Socket) TrySend(frames ...[]byte) error {
	if err := s.checkSend(frames); err != nil {
		return err
	}
	if s.mandatory {
		return s.sendRouted(frames)
	}
	if err := s.Flush(); err != nil {
		return err
	}
	if len(s.pending) > 0 {
		return ErrFull
	}
	n, err := s.sendFrames(frames, 0)
	switch {
	case n == 0 && errors.Is(err, errWouldBlock):
		return ErrFull
	case errors.Is(err, ErrUnreachable):
		return nil // zmq dropped it, as it drops for a peer that is gone
	case errors.Is(err, errWouldBlock):
		// zmq took the first frames of a message: ROUTER and XPUB decide
		// on the first frame, so this does not happen; keep the rest for
		// Flush rather than corrupt the stream.
		s.pending = append(s.pending, frames)
		s.partial = n
		return nil
	}
	return err
}

// SendLossy sends a one-frame message on an XPUB with Options.XPubNoDrop
// to the subscribers that have room and drops it for those at their send
// HWM, as a plain PUB would. It is the fallback after TrySend returned
// ErrFull: libzmq's no-drop mode refuses a message for everybody as soon
// as one subscriber is full, so without it a single subscriber that stops
// reading would blind all the others. The socket is in no-drop mode again
// on return.
func (s *Socket) SendLossy(frame []byte) error {
	if s.typ != XPub {
		return fmt.Errorf("transport: SendLossy on %v", s.typ)
	}
	if s.sock == nil {
		return ErrClosed
	}
	if err := s.sock.SetXpubNodrop(false); err != nil {
		return fmt.Errorf("transport: clear xpub nodrop: %w", err)
	}
	var err error
	for {
		if _, err = s.sock.SendBytes(frame, zmq.DONTWAIT); err == nil || !isErrno(err, syscall.EINTR) {
			break
		}
	}
	if err2 := s.sock.SetXpubNodrop(true); err2 != nil {
		return fmt.Errorf("transport: set xpub nodrop: %w", err2)
	}
	if err != nil && !isErrno(err, syscall.EAGAIN) {
		return fmt.Errorf("transport: send on %v %s: %w", s.typ, s.addr, err)
	}
	return nil
}

// Flush sends the messages zmq refused earlier, in order (per peer for a
// RouterMandatory socket), until it refuses again. It returns only fatal
// errors.
func (s *Socket) Flush() error {
	if s.mandatory {
		return s.flushBacklog()
	}
	for len(s.pending) > 0 {
		n, err := s.sendFrames(s.pending[0], s.partial)
		s.partial = n
		switch {
		case errors.Is(err, errWouldBlock):
			return nil
		case err != nil && !errors.Is(err, ErrUnreachable):
			return err
		}
		// Sent, or dropped by zmq for a peer that is gone (not with
		// RouterMandatory, which sends through sendRouted).
		s.pending[0] = nil
		s.pending = s.pending[1:]
		s.partial = 0
	}
	s.pending = nil
	return nil
}

// sendFrames hands msg[from:] to zmq without blocking (pebbe/zmq4 retries
// after EINTR) and returns the index of the first frame zmq did not take
// (len(msg) when all went) with why: errWouldBlock (EAGAIN: the peer or
// subscriber is at its high-water mark), ErrUnreachable (EHOSTUNREACH on
// the first frame: no such ROUTER peer), or a fatal error. What a refusal
// means is the caller's: Flush and TrySend keep the rest, sendNow keeps
// the whole message in the peer's backlog.
func (s *Socket) sendFrames(msg [][]byte, from int) (int, error) {
	for i := from; i < len(msg); {
		flags := zmq.DONTWAIT
		if i < len(msg)-1 {
			flags |= zmq.SNDMORE
		}
		_, err := s.sock.SendBytes(msg[i], flags)
		switch {
		case err == nil:
			i++
		case isErrno(err, syscall.EAGAIN):
			return i, errWouldBlock
		case i == 0 && isErrno(err, syscall.EHOSTUNREACH):
			return i, ErrUnreachable
		default:
			return i, fmt.Errorf("transport: send on %v %s: %w", s.typ, s.addr, err)
		}
	}
	return len(msg), nil
}

// TryRecv returns the next whole message, or nil when none is ready.
func (s *Socket) TryRecv() ([][]byte, error) {
	if s.sock == nil {
		return nil, ErrClosed
	}
	var msg [][]byte
	var err error
	if h := socketHandle(s.sock); h != nil {
		msg, err = recvParts(h, &s.recv, s.watch != nil)
	} else {
		msg, err = s.sock.RecvMessageBytes(zmq.DONTWAIT)
		s.recv.srcfd = -1 // no descriptor without the handle: not watched
	}
	switch {
	case isErrno(err, syscall.EAGAIN):
		return nil, nil
	case err != nil: // both receivers retry after EINTR themselves
		return nil, fmt.Errorf("transport: recv on %v %s: %w", s.typ, s.addr, err)
	}
	if s.watch != nil && len(msg) > 0 {
		if err := s.watch.seen(int(s.recv.srcfd), msg[0]); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// unsentRetry bounds how long a loop sleeps while its socket keeps messages
// that zmq refused: it tries them again at least this often.
const unsentRetry = 10 * time.Millisecond

// PollWait is how long the owning loop may block in Poller.Wait when its
// next timer is due in timer: 0 when a message is ready to read or the loop
// has work of its own (busy); while messages that zmq refused wait, it
// tries Flush and allows at most unsentRetry; otherwise until the timer.
func (s *Socket) PollWait(timer time.Duration, busy bool) (time.Duration, error) {
	readable, unsent, err := s.Pending()
	switch {
	case err != nil:
		return 0, err
	case readable || busy:
		return 0, nil
	case unsent:
		_ = s.Flush()
		return min(max(timer, 0), unsentRetry), nil
	}
	return max(timer, 0), nil
}

// Pending reports whether the loop must not block yet: a message is ready
// to read, or unsent messages wait for the socket to become writable (in
// which case readable is false and the loop should poll again soon).
func (s *Socket) Pending() (readable bool, unsent bool, err error) {
	if s.sock == nil {
		return false, false, ErrClosed
	}
	ev, err := s.sock.GetEvents()
	if err != nil {
		if isErrno(err, syscall.EINTR) {
			return true, len(s.pending) > 0, nil // look again
		}
		return false, false, fmt.Errorf("transport: events of %s: %w", s.addr, err)
	}
	return ev&zmq.POLLIN != 0, len(s.pending) > 0 || len(s.backlog) > 0, nil
}

// Close closes the socket. Messages handed to zmq are flushed in the
// background for up to a second (ZMQ_LINGER); messages zmq refused are
// retried for up to that long first. Close on a nil *Socket does nothing,
// so that owners can close what a failed start-up left half made.
func (s *Socket) Close() error {
	if s == nil || s.sock == nil {
		return nil
	}
	if len(s.pending) > 0 || len(s.backlog) > 0 {
		poller := zmq.NewPoller()
		poller.Add(s.sock, zmq.POLLOUT)
		for i := 0; i < 100 && (len(s.pending) > 0 || len(s.backlog) > 0); i++ {
			if err := s.Flush(); err != nil {
				break
			}
			if len(s.pending) > 0 || len(s.backlog) > 0 {
				_, _ = poller.Poll(linger / 100)
			}
		}
	}
	if s.watch != nil {
		s.watch.close(s.sock)
		s.watch = nil
	}
	err := s.sock.Close()
	s.sock = nil
	s.pending = nil
	s.backlog = nil
	return err
}
