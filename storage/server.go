package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/transport"
)

// After this many bytes of objects were dropped, the server gives the C
// heap's free pages back to the system (transport.TrimMemory), on its next
// tick and the one after: a dropped object still queued for sending is freed
// only when libzmq has sent it.
const (
	trimAfterFreed = 64 << 20
	trimTick       = time.Second
)

// recvHWM is the ROUTER's receive high-water mark per client, in messages.
const recvHWM = 1000

// expireTick is how often parked requests are checked against their
// deadline: a request waits its timeout plus at most a quarter of it (and at
// most a second). Each check costs O(expired), not O(parked).
func expireTick(timeout time.Duration) time.Duration {
	return min(max(timeout/4, 10*time.Millisecond), time.Second)
}

// Server is the object storage server. One goroutine (Run) owns all state;
// requests are handled strictly in arrival order, and no handler blocks, so
// a slow or misbehaving client never stalls the others.
type Server struct {
	log   zerolog.Logger
	ep    *transport.Endpoint
	store *store

	mu      sync.Mutex
	running bool
	closed  bool
}

// NewServer validates cfg and binds the ROUTER socket immediately, so the
// caller knows the address is usable (and, for port 0, which port it got)
// before calling Run.
func NewServer(cfg Config, log zerolog.Logger) (*Server, error) {
	if cfg.MaxMemory < 0 {
		return nil, fmt.Errorf("object storage server: max memory must be >= 0, got %d", cfg.MaxMemory)
	}
	if cfg.WaitTimeout < 0 || cfg.MaxWaitingPerPeer < 0 {
		return nil, fmt.Errorf("object storage server: wait timeout and waiting requests per peer must be >= 0, got %v and %d",
			cfg.WaitTimeout, cfg.MaxWaitingPerPeer)
	}
	// ZeroCopyRecv: a set's payload stays in the libzmq message it arrived
	// in, and gets send that message again (shared, not copied).
	// The receive HWM pushes back on a client that sends faster than the
	// server handles (libzmq stops reading its connection). The send HWM
	// stays unlimited: a ROUTER drops silently at the mark, and a get's reply
	// shares the stored object's memory (it is not copied), so a client that
	// does not read costs the headers of its replies.
	// WatchClosed: a peer whose connection closed has its parked requests
	// dropped at once (nobody would receive their replies).
	opt := transport.Options{ZeroCopyRecv: true, WatchClosed: true, RecvHWM: recvHWM, MaxMsgSize: cfg.maxMessageSize()}
	ep, err := transport.Bind(transport.Router, cfg.Address, opt)
	if err != nil {
		return nil, fmt.Errorf("object storage server: %w", err)
	}
	s := &Server{log: log, ep: ep}
	s.store = newStore(cfg.MaxMemory, log, s.send)
	if cfg.WaitTimeout > 0 {
		s.store.waitTimeout = cfg.WaitTimeout
	}
	if cfg.MaxWaitingPerPeer > 0 {
		s.store.maxPerPeer = cfg.MaxWaitingPerPeer
	}
	return s, nil
}

// Addr returns the bound address, with the actual port when 0 was asked for.
func (s *Server) Addr() string { return s.ep.Addr() }

// send hands a reply to the transport. Send fails only once the endpoint is
// closed, when replies are moot.
func (s *Server) send(frames ...[]byte) {
	if err := s.ep.Send(frames...); err != nil && !errors.Is(err, transport.ErrClosed) {
		s.log.Debug().Err(err).Msg("send failed")
	}
}

// Run serves requests until ctx is done, then closes the socket and returns
// nil. It returns an error if the endpoint fails or Run was already called.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.closed {
		s.mu.Unlock()
		return errors.New("object storage server: Run called twice or after Close")
	}
	s.running = true
	s.mu.Unlock()

	s.log.Info().Stringer("wait_timeout", s.store.waitTimeout).Int("max_waiting_per_peer", s.store.maxPerPeer).
		Msgf("listening on %s", s.Addr())
	defer func() {
		_ = s.Close()
		s.store.releaseAll()
		s.log.Info().Msg("stopped")
	}()

	recv := s.ep.Recv()
	closed := s.ep.Closed()
	done := ctx.Done()
	tick := time.NewTicker(trimTick)
	defer tick.Stop()
	expiry := time.NewTicker(expireTick(s.store.waitTimeout))
	defer expiry.Stop()
	trims := 0 // trims still to do
	var trimming atomic.Bool
	for {
		select {
		case <-done:
			return nil
		case <-expiry.C:
			s.store.expire()
		case peer, ok := <-closed:
			if !ok {
				closed = nil // closed with Recv, which reports why
				continue
			}
			// A close can be reported before the peer's last messages are
			// handled: a get parked after it waits for its deadline.
			s.store.dropPeer(peer)
		case <-tick.C:
			s.store.reportWaits()
			if s.store.freed >= trimAfterFreed {
				s.store.freed = 0
				trims = 2
			}
			if trims > 0 && trimming.CompareAndSwap(false, true) {
				trims--
				go func() { // off the loop: a trim walks the whole heap
					transport.TrimMemory()
					trimming.Store(false)
				}()
			}
		case msg, ok := <-recv:
			if !ok {
				s.mu.Lock()
				closed := s.closed
				s.mu.Unlock()
				if closed {
					return nil
				}
				return errors.New("object storage server: socket closed unexpectedly")
			}
			s.store.handle(msg) // retains what it keeps
			transport.ReleaseMessage(msg)
		}
	}
}

// Close releases the socket of a server whose Run was never called; Run
// calls it on its way out. It is idempotent, and does nothing on a nil
// *Server.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.ep.Close()
	// Release requests that arrived but were never handled (the channel is
	// closed now). If Run is still reading, each message goes to one of us.
	for msg := range s.ep.Recv() {
		transport.ReleaseMessage(msg)
	}
	return err
}
