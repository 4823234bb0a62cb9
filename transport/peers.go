package transport

// Peer connection closed events (Options.WatchClosed).
//
// libzmq 4.3 as Debian ships it has no ZMQ_ROUTER_NOTIFY (a draft option,
// compiled out), so a bound ROUTER learns that a peer went away only from
// its socket monitor: ZMQ_EVENT_ACCEPTED and ZMQ_EVENT_DISCONNECTED name
// the connection's file descriptor, not the peer's routing identity. Every
// received message carries the descriptor it came through (ZMQ_SRCFD,
// read in the same cgo call as the message; the data parts always have
// it, a ROUTER's identity part not when a poll prefetched the message),
// so the first message of a
// connection ties its descriptor to its identity; a DISCONNECTED event for
// that descriptor is then reported as that identity's connection closed.
//
// Descriptors are reused. libzmq sends DISCONNECTED before it closes the
// descriptor, and ACCEPTED for a new connection before any of its
// messages, all from one I/O thread; so when a message arrives on a
// descriptor with no open connection, or with another identity, the
// watcher reads the pending events first (the old connection's close, the
// new one's accept) and only then records the new identity. A peer whose
// connection closes before it sent anything is never reported (nobody
// knows it). A peer that reconnects with the same identity on the same
// descriptor before the old close is read is reported closed once more
// (its old connection did close, and what was queued on it is lost).

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"

	zmq "github.com/pebbe/zmq4"
)

const (
	// maxClosedPending bounds the identities reported but not yet taken
	// (TakeClosed, or the Closed channel of an Endpoint); beyond it
	// reports are dropped and counted (ClosedDropped): the peer's
	// heartbeat timeout still notices it.
	maxClosedPending = 1 << 16
	// monitorHWM is the receive high-water mark of the monitor socket:
	// libzmq drops events beyond it while nobody reads, so it is large.
	monitorHWM = 1 << 16
)

// closeWatch maps the connections of a bound ROUTER to routing identities
// and turns the socket monitor's close events into identities.
type closeWatch struct {
	mon     *zmq.Socket
	fd      int
	conns   map[int][]byte // open connection's descriptor -> identity (nil: none seen yet)
	closed  [][]byte
	dropped uint64
}

// newCloseWatch starts the socket monitor of sock (a ROUTER) on a fresh
// inproc address and connects a PAIR to it.
func newCloseWatch(sock *zmq.Socket) (_ *closeWatch, err error) {
	addr := fmt.Sprintf("inproc://transport-monitor-%d", wakeSeq.Add(1))
	if err := sock.Monitor(addr, zmq.EVENT_ACCEPTED|zmq.EVENT_DISCONNECTED); err != nil {
		return nil, fmt.Errorf("transport: socket monitor: %w", err)
	}
	defer func() {
		if err != nil {
			_ = sock.Monitor("", 0)
		}
	}()
	ctx, err := sharedContext()
	if err != nil {
		return nil, err
	}
	mon, err := ctx.NewSocket(zmq.PAIR)
	if err != nil {
		return nil, fmt.Errorf("transport: monitor socket: %w", err)
	}
	w := &closeWatch{mon: mon, conns: map[int][]byte{}}
	if err = mon.SetLinger(0); err == nil {
		err = mon.SetRcvhwm(monitorHWM)
	}
	if err == nil {
		err = mon.Connect(addr)
	}
	if err == nil {
		w.fd, err = mon.GetFd()
	}
	if err != nil {
		_ = mon.Close()
		return nil, fmt.Errorf("transport: monitor socket: %w", err)
	}
	return w, nil
}

// seen records that a message from identity id came through descriptor fd.
func (w *closeWatch) seen(fd int, id []byte) error {
	if fd < 0 || len(id) == 0 {
		return nil // inproc, or not from a peer
	}
	cur, open := w.conns[fd]
	if open && bytes.Equal(cur, id) {
		return nil
	}
	// A descriptor not known to be open, or open for someone else: read
	// what the monitor has first (see the file comment).
	if err := w.drain(); err != nil {
		return err
	}
	if cur := w.conns[fd]; cur == nil || !bytes.Equal(cur, id) {
		// Also when the ACCEPTED event was missed (a connection made
		// before the monitor started): the message proves it is open.
		w.conns[fd] = bytes.Clone(id)
	}
	return nil
}

// drain reads every pending monitor event.
func (w *closeWatch) drain() error {
	for {
		ev, _, value, err := w.mon.RecvEvent(zmq.DONTWAIT) // EINTR is retried by pebbe/zmq4 (see drainWake)
		if isErrno(err, syscall.EAGAIN) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("transport: monitor events: %w", err)
		}
		switch ev {
		case zmq.EVENT_ACCEPTED:
			if id := w.conns[value]; id != nil {
				w.report(id) // its close was never seen: it is gone
			}
			w.conns[value] = nil
		case zmq.EVENT_DISCONNECTED:
			if id, ok := w.conns[value]; ok {
				delete(w.conns, value)
				if id != nil {
					w.report(id)
				}
			}
		}
	}
}

func (w *closeWatch) report(id []byte) {
	if len(w.closed) >= maxClosedPending {
		w.dropped++
		return
	}
	w.closed = append(w.closed, id)
}

// take returns the reported identities and forgets them.
func (w *closeWatch) take() [][]byte {
	out := w.closed
	w.closed = nil
	return out
}

func (w *closeWatch) close(sock *zmq.Socket) {
	_ = sock.Monitor("", 0)
	_ = w.mon.Close()
}

// TakeClosed returns the routing identities of the peers whose connection
// closed since the last call, oldest first, and nil when there are none
// (see Options.WatchClosed; without it, always nil). It reads the socket
// monitor without blocking, so a loop calls it every iteration: ClosedFd
// becomes readable when events wait, but like Fd it is only a hint.
//
// A close can be reported before every message the peer sent just before
// closing was read: a loop that wants those first reads TakeClosed before
// draining TryRecv, and acts on the closes after.
func (s *Socket) TakeClosed() ([][]byte, error) {
	if s.watch == nil {
		return nil, nil
	}
	if err := s.watch.drain(); err != nil {
		return nil, err
	}
	return s.watch.take(), nil
}

// ClosedFd returns the descriptor to poll for close events, or -1 without
// Options.WatchClosed.
func (s *Socket) ClosedFd() int {
	if s.watch == nil {
		return -1
	}
	return s.watch.fd
}

// ClosedDropped returns how many close reports were dropped because more
// than 65,536 were waiting to be taken.
func (s *Socket) ClosedDropped() uint64 {
	if s.watch == nil {
		return 0
	}
	return s.watch.dropped
}

// Closed returns the channel on which an Endpoint with
// Options.WatchClosed reports the routing identity of every peer whose
// connection closed (nil without it). The owner never waits for it: while
// 1,024 reports wait unread, further ones are dropped (and counted by
// ClosedDropped). A close can be reported before the last messages the
// peer sent are delivered on Recv. The channel is closed with Recv.
func (e *Endpoint) Closed() <-chan []byte { return e.closedCh }

// ClosedDropped returns how many close reports the Endpoint dropped.
func (e *Endpoint) ClosedDropped() uint64 { return e.closedDropped.Load() }

// deliverClosed hands the watch's reports to the Closed channel.
func (e *Endpoint) deliverClosed() {
	for _, id := range e.watch.take() {
		select {
		case e.closedCh <- id:
		default:
			e.closedDropped.Add(1)
		}
	}
	if n := e.watch.dropped; n > 0 {
		e.watch.dropped = 0
		e.closedDropped.Add(n)
	}
}

// MaxPeerBacklog is how many messages a RouterMandatory Socket keeps for
// one peer at its high-water mark (see Socket.Send).
const MaxPeerBacklog = 1 << 16

// Unreachable is a peer that messages could not be delivered to, and how
// many were dropped.
type Unreachable struct {
	Peer     []byte
	Messages int
	// Full: the peer is connected but its backlog overflowed
	// (MaxPeerBacklog messages or Options.MaxPeerBacklogBytes): it does not
	// read. Otherwise it was not connected.
	Full bool
}

// TakeUnreachable returns the peers messages could not be delivered to
// since the last call (Options.RouterMandatory), each once with the number
// of messages dropped, in the order they were found; nil when none.
func (s *Socket) TakeUnreachable() []Unreachable {
	out := s.unreachable
	s.unreachable = nil
	clear(s.unreachIdx)
	return out
}

func (s *Socket) lost(peer []byte, n int, full bool) {
	if s.unreachIdx == nil {
		s.unreachIdx = map[string]int{}
	}
	if i, ok := s.unreachIdx[string(peer)]; ok {
		s.unreachable[i].Messages += n
		s.unreachable[i].Full = s.unreachable[i].Full || full
		return
	}
	s.unreachIdx[string(peer)] = len(s.unreachable)
	s.unreachable = append(s.unreachable, Unreachable{Peer: peer, Messages: n, Full: full})
}

func msgBytes(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}

// SetPeerBacklogBytes gives peer a backlog bound of its own instead of
// Options.MaxPeerBacklogBytes (a peer that carries many others' messages,
// such as a host of relayed workers, needs more room); n <= 0 takes the
// peer's own bound away. The caller bounds how many peers it sets.
func (s *Socket) SetPeerBacklogBytes(peer []byte, n int) {
	if n <= 0 {
		delete(s.peerBacklogMax, string(peer))
		return
	}
	if s.peerBacklogMax == nil {
		s.peerBacklogMax = map[string]int{}
	}
	s.peerBacklogMax[string(peer)] = n
}

// backlogBound is the byte bound of key's backlog (0: none).
func (s *Socket) backlogBound(key string) int {
	if n, ok := s.peerBacklogMax[key]; ok {
		return n
	}
	return s.maxBacklogBytes
}

// dropBacklog forgets key's backlog (reported as lost).
func (s *Socket) dropBacklog(key string, peer []byte, extra int, full bool) {
	s.lost(peer, len(s.backlog[key])+extra, full)
	delete(s.backlog, key)
	delete(s.backlogBytes, key)
}

var errWouldBlock = errors.New("transport: peer at its high-water mark")

// sendRouted is Send on a RouterMandatory socket.
func (s *Socket) sendRouted(frames [][]byte) error {
	key := string(frames[0])
	if q, ok := s.backlog[key]; ok {
		size := s.backlogBytes[key] + msgBytes(frames)
		if bound := s.backlogBound(key); len(q) >= MaxPeerBacklog || (bound > 0 && size > bound) {
			s.dropBacklog(key, frames[0], 1, true)
			return ErrUnreachable
		}
		s.backlog[key] = append(q, frames)
		s.backlogBytes[key] = size
		return nil
	}
	switch err := s.sendNow(frames); {
	case err == nil:
		return nil
	case errors.Is(err, errWouldBlock):
		if s.backlog == nil {
			s.backlog = map[string][][][]byte{}
			s.backlogBytes = map[string]int{}
		}
		s.backlog[key] = [][][]byte{frames}
		s.backlogBytes[key] = msgBytes(frames)
		return nil
	case errors.Is(err, ErrUnreachable):
		s.lost(frames[0], 1, false)
		return ErrUnreachable
	default:
		return err
	}
}

// flushBacklog sends what waits for each peer, in order, until the peer is
// full again; a peer that went away loses its backlog (reported).
func (s *Socket) flushBacklog() error {
	for key, q := range s.backlog {
		n := 0
		for n < len(q) {
			err := s.sendNow(q[n])
			if errors.Is(err, errWouldBlock) {
				break
			}
			if errors.Is(err, ErrUnreachable) {
				s.lost(q[n][0], len(q)-n, false)
				n = len(q)
				break
			}
			if err != nil {
				return err
			}
			s.backlogBytes[key] -= msgBytes(q[n])
			q[n] = nil
			n++
		}
		if n == len(q) {
			delete(s.backlog, key)
			delete(s.backlogBytes, key)
		} else {
			s.backlog[key] = q[n:]
		}
	}
	return nil
}

// sendNow hands a whole message to a RouterMandatory ROUTER or reports why
// not: errWouldBlock (peer at its high-water mark) or ErrUnreachable (peer
// not connected). libzmq decides both on the identity frame, and once that
// is taken the rest of the message fits: a refusal after it is an error,
// since a backlog only holds whole messages.
func (s *Socket) sendNow(frames [][]byte) error {
	n, err := s.sendFrames(frames, 0)
	if n > 0 && errors.Is(err, errWouldBlock) {
		return fmt.Errorf("transport: send on %v %s: refused after %d of %d frames", s.typ, s.addr, n, len(frames))
	}
	return err
}
