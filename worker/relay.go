package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/identity"
	"github.com/opengris/scaler/transport"
)

// RunRelay carries the messages of the workers connected to local (an
// address this process binds, ipc:// for a cluster's worker processes) to
// the scheduler at scheduler over one connection, each worker's wrapped in
// a protocol.Relay (docs/protocol.md §7.7), and the scheduler's answers back
// to each worker, until ctx is done. Workers see a scheduler at local and
// nothing else changes for them; the scheduler sees one connection that
// hosts them, so that what it has for all of them after one round of input
// is one message instead of one per worker. A worker whose connection to
// the relay closes is reported closed to the scheduler at once. (Relayed
// workers open no connection of their own to the scheduler: they learn of
// a scheduler restart from its heartbeat echo, as the combo's do.)
//
// ready, if set, is called once both sockets are open. The relay checks
// nothing of what it carries: the scheduler does.
func RunRelay(ctx context.Context, local, scheduler string, ready func(), log zerolog.Logger) error {
	down, err := transport.Open(transport.Router, local, true,
		transport.Options{RouterMandatory: true, WatchClosed: true, SendHWM: workerHWM, RecvHWM: workerHWM,
			MaxPeerBacklogBytes: workerBacklogBytes})
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer down.Close()
	id := identity.New("Host", ShortHostname())
	up, err := transport.Open(transport.Dealer, scheduler, false, transport.Options{Identity: []byte(id)})
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer up.Close()
	poller, err := transport.NewPoller()
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer poller.Close()
	waker, err := transport.NewWaker()
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer waker.Close()
	for _, fd := range []int{down.Fd(), down.ClosedFd(), up.Fd(), waker.Fd()} {
		if err := poller.Add(fd, false); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, waker.Wake)
	defer stop()
	log.Info().Str("host", id).Str("local", local).Str("scheduler", scheduler).
		Msg("relay: the workers here reach the scheduler over one connection")
	if ready != nil {
		ready()
	}
	r := relay{up: up, down: down, log: log, waiting: map[string]*relayed{}}
	for ctx.Err() == nil {
		if err := r.round(); err != nil {
			return err
		}
		wait, err := up.PollWait(time.Second, false)
		if err != nil {
			return fmt.Errorf("relay: scheduler socket: %w", err)
		}
		if w, err := down.PollWait(wait, false); err != nil {
			return fmt.Errorf("relay: workers' socket: %w", err)
		} else if w < wait {
			wait = w
		}
		ready, err := poller.Wait(wait)
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		for _, e := range ready {
			if e.Fd == waker.Fd() {
				waker.Drain()
			}
		}
	}
	// What the workers said last (their DisconnectRequests, sent as they
	// stopped) goes out before the sockets close; Close lingers to send it.
	return r.round()
}

// relay is RunRelay's loop state.
type relay struct {
	up, down *transport.Socket
	log      zerolog.Logger
	// waiting holds, per worker, what it sent in this round, in the order
	// the workers first sent something (order).
	waiting map[string]*relayed
	order   []*relayed
	closed  [][]byte // workers whose link closed, not reported yet
}

type relayed struct {
	worker []byte
	frames [][]byte
	closed bool
}

// maxRelayReads bounds the messages read from one socket in one round, so
// that neither direction starves the other.
const maxRelayReads = 4096

// workerHWM is the high-water mark of each worker's queue in zmq, in
// messages (each one Batch at most), as the scheduler's routerHWM: past
// it the transport keeps the worker's messages in a backlog bounded by
// workerBacklogBytes, and a worker that does not read for that long is
// reported closed. (With no mark, zmq would keep everything for it.)
const workerHWM = 32

var workerBacklogBytes = 8 << 20 // a var: tests make it small

// round moves what waits on either socket to the other.
func (r *relay) round() error {
	// Closes are taken before the reads and reported after them, so that a
	// worker's last messages go first; if the reads stop at their bound
	// with messages left, the closes wait for a round that drains.
	closed, err := r.down.TakeClosed()
	if err != nil {
		return fmt.Errorf("relay: workers' socket: %w", err)
	}
	r.closed = append(r.closed, closed...)
	drained := false
	for i := 0; i < maxRelayReads; i++ {
		frames, err := r.down.TryRecv()
		if err != nil {
			return fmt.Errorf("relay: workers' socket: %w", err)
		}
		if frames == nil {
			drained = true
			break
		}
		if len(frames) != 2 || len(frames[0]) == 0 || len(frames[1]) == 0 {
			continue // not a worker's DEALER
		}
		w := r.from(frames[0])
		if protocol.Kind(frames[1][0]) != protocol.KindBatch {
			w.frames = append(w.frames, frames[1])
			continue
		}
		// A Relay's elements are single frames: a worker's Batch is
		// unpacked (a bad one goes as it is; the scheduler drops it).
		m, err := protocol.Decode(frames[1])
		if err != nil {
			w.frames = append(w.frames, frames[1])
			continue
		}
		w.frames = append(w.frames, m.(*protocol.Batch).Messages...)
	}
	if drained {
		for _, id := range r.closed {
			r.from(id).closed = true
		}
		clear(r.closed)
		r.closed = r.closed[:0]
	}
	if err := r.sendUp(); err != nil {
		return err
	}
	// A worker gone meanwhile: its close reaches the scheduler by itself.
	// One that stopped reading lost what the scheduler sent it: it is
	// reported closed (next round), so that its tasks run elsewhere; its
	// next heartbeat registers it afresh.
	for _, u := range r.down.TakeUnreachable() {
		if u.Full {
			r.log.Warn().Str("worker", string(u.Peer)).Int("dropped_messages", u.Messages).
				Msg("relay: a worker stopped reading; what was sent to it is dropped and it is reported closed")
			r.closed = append(r.closed, u.Peer)
		}
	}
	for i := 0; i < maxRelayReads; i++ {
		frames, err := r.up.TryRecv()
		if err != nil {
			return fmt.Errorf("relay: scheduler socket: %w", err)
		}
		if frames == nil {
			return nil
		}
		if len(frames) == 1 {
			if err := r.sendDown(frames[0]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *relay) from(worker []byte) *relayed {
	w := r.waiting[string(worker)]
	if w == nil {
		w = &relayed{worker: worker}
		r.waiting[string(worker)] = w
		r.order = append(r.order, w)
	}
	return w
}

// sendUp sends what the workers sent in this round, one Relay per worker
// (and Batch-sized piece), the Relays together as Batches.
func (r *relay) sendUp() error {
	if len(r.order) == 0 {
		return nil
	}
	var relays [][]byte
	for _, w := range r.order {
		pieces := protocol.Pieces(w.frames)
		if len(pieces) == 0 {
			pieces = [][][]byte{nil} // a close alone
		}
		for i, piece := range pieces {
			last := i == len(pieces)-1
			relays = append(relays, protocol.MustEncode(&protocol.Relay{Worker: w.worker, Messages: piece, Closed: last && w.closed}))
		}
		delete(r.waiting, string(w.worker))
	}
	clear(r.order)
	r.order = r.order[:0]
	for _, f := range protocol.Coalesce(relays) {
		if err := r.up.Send(f); err != nil {
			return fmt.Errorf("relay: scheduler socket: %w", err)
		}
	}
	return nil
}

// sendDown hands one message from the scheduler to the workers it names.
func (r *relay) sendDown(frame []byte) error {
	m, err := protocol.Decode(frame)
	if err != nil {
		r.log.Warn().Err(err).Msg("relay: dropped an undecodable message from the scheduler")
		return nil
	}
	deliver := func(rl *protocol.Relay) error {
		for _, f := range protocol.Coalesce(rl.Messages) {
			err := r.down.Send(rl.Worker, f)
			if errors.Is(err, transport.ErrUnreachable) {
				return nil // gone meanwhile: its close reaches the scheduler
			}
			if err != nil {
				return fmt.Errorf("relay: workers' socket: %w", err)
			}
		}
		return nil
	}
	switch m := m.(type) {
	case *protocol.Relay:
		return deliver(m)
	case *protocol.Batch:
		var err error
		m.Each(func(_ []byte, e protocol.Message, derr error) {
			if rl, ok := e.(*protocol.Relay); ok && derr == nil && err == nil {
				err = deliver(rl)
			}
		})
		return err
	}
	return nil // the scheduler sends a host nothing else
}
