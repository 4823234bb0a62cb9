package server

import (
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/transport"
)

// Hosted workers (protocol.Relay, docs/protocol.md §7.7): a connection may
// carry the messages of many workers, each wrapped in a Relay that names
// it. To the core such a worker is a peer like any other, with its own id;
// the server keeps which connection hosts it, unwraps what comes in and
// wraps what goes out, so that everything for one host's workers in one
// loop iteration leaves as one message.
//
// A connection acts only for the workers it introduced: the first Relay
// naming an id claims it for that connection, unless the id is already a
// peer of the core (a directly connected worker or client) or claimed by
// another connection; a directly connected peer cannot use a claimed id
// either. Claims end when the worker's Relay says Closed, when the host's
// connection closes, and, when a host's table is full, for the workers the
// core no longer has.

// Bounds of the hosted tables: far above one machine's workers, and a
// connection that claims ids at random fills only its own share.
const (
	maxHostedPerConnection = 4096
	maxHostedWorkers       = 1 << 16
	// maxHostBacklogBytes bounds a host's backlog (the transport's, for a
	// peer at routerHWM), which is peerBacklogBytes per worker it hosts up
	// to this: a host carries all its workers' traffic, and one that pauses
	// for a moment must not lose them all.
	maxHostBacklogBytes = 256 << 20
)

// hostedKinds are the messages a hosted worker may send: a worker's
// (core/scheduler kindRoles), and ObjectInstruction for its results.
var hostedKinds = map[protocol.Kind]bool{
	protocol.KindWorkerHeartbeat:   true,
	protocol.KindDisconnectRequest: true,
	protocol.KindTaskCancelConfirm: true,
	protocol.KindTaskResult:        true,
	protocol.KindTaskLog:           true,
	protocol.KindObjectInstruction: true,
}

// hosting is the table of hosted workers.
type hosting struct {
	hostOf  map[string]string              // hosted worker -> its host connection
	workers map[string]map[string]struct{} // host connection -> the workers it hosts
	bound   map[string]int                 // host connection -> its backlog bound (boundHost)
	// refusals counts relays dropped since start (not the host's, a full
	// table, a bad element); reported once a second with an example.
	refusals, lastRefusals uint64
	refusedWhy             string
}

func newHosting() hosting {
	return hosting{hostOf: map[string]string{}, workers: map[string]map[string]struct{}{}, bound: map[string]int{}}
}

// claimed reports whether id is a hosted worker's (so that a direct
// message from it is not its own).
func (h *hosting) claimed(id []byte) bool {
	if len(h.hostOf) == 0 {
		return false
	}
	_, ok := h.hostOf[string(id)]
	return ok
}

func (h *hosting) refuse(why string) {
	h.refusals++
	h.refusedWhy = why
}

// onRelay handles one Relay from connection host.
func (s *Server) onRelay(host []byte, r *protocol.Relay) {
	h := &s.hosted
	w := string(r.Worker)
	switch owner, ok := h.hostOf[w]; {
	case w == "" || w == string(host):
		h.refuse("a relay that names no worker, or its own connection")
		return
	case h.claimed(host):
		h.refuse("a relay from a connection whose id a host claimed for a worker")
		return
	case ok && owner != string(host):
		h.refuse("a relay for a worker that another connection hosts")
		return
	case !ok && !s.claim(string(host), w, r):
		return
	}
	now := time.Now()
	for _, f := range r.Messages {
		if len(f) == 0 || !hostedKinds[protocol.Kind(f[0])] {
			h.refuse("a relayed message that is not a worker's")
			continue
		}
		m, err := protocol.Decode(f)
		if err != nil {
			s.dropMalformed(r.Worker, err, "undecodable relayed message dropped")
			continue
		}
		s.count(m.Kind())
		s.core.Handle(r.Worker, m, now)
	}
	if r.Closed {
		s.core.PeerClosed(r.Worker, now)
		s.release(w)
	}
}

// claim makes host the host of worker w, whose first relay is r; false (and
// counted) if it may not. A claim starts with the worker's registration (a
// WorkerHeartbeat), so that relays of nothing claim nothing.
func (s *Server) claim(host, w string, r *protocol.Relay) bool {
	h := &s.hosted
	switch {
	case len(r.Messages) == 0 || len(r.Messages[0]) == 0 || protocol.Kind(r.Messages[0][0]) != protocol.KindWorkerHeartbeat:
		if len(r.Messages) > 0 { // a lone close of an unknown worker is no fault
			h.refuse("a relay for an unknown worker that does not start with its heartbeat")
		}
		return false
	case h.workers[w] != nil:
		h.refuse("a relay that names a host's own connection")
		return false
	case s.core.Knows([]byte(w)):
		h.refuse("a relay for a worker or client that is connected directly")
		return false
	}
	mine := h.workers[host]
	if len(mine) >= maxHostedPerConnection {
		s.pruneHosted(host)
		mine = h.workers[host]
	}
	if len(h.hostOf) >= maxHostedWorkers {
		for other := range h.workers {
			s.pruneHosted(other)
		}
		mine = h.workers[host]
	}
	if len(mine) >= maxHostedPerConnection || len(h.hostOf) >= maxHostedWorkers {
		h.refuse("a relay for one more worker than the hosted workers' bound")
		return false
	}
	if mine == nil {
		mine = map[string]struct{}{}
		h.workers[host] = mine
	}
	mine[w] = struct{}{}
	h.hostOf[w] = host
	s.boundHost(host)
	return true
}

// boundHost sets host's backlog bound for the most workers it has hosted
// at once: never lowered while it hosts any, so that what the transport
// already holds for it stays within the bound; dropped with its last one.
func (s *Server) boundHost(host string) {
	h := &s.hosted
	n := len(h.workers[host])
	if n == 0 {
		delete(h.bound, host)
		s.router.SetPeerBacklogBytes([]byte(host), 0)
		return
	}
	if b := min(n*peerBacklogBytes, maxHostBacklogBytes); b > h.bound[host] {
		h.bound[host] = b
		s.router.SetPeerBacklogBytes([]byte(host), b)
	}
}

// pruneHosted ends the claims of host's workers that the core has removed
// (timed out, disconnected): a host that restarts its workers under new
// ids does not fill its table with the old ones.
func (s *Server) pruneHosted(host string) {
	for w := range s.hosted.workers[host] {
		if !s.core.Knows([]byte(w)) {
			s.release(w)
		}
	}
}

// release ends worker w's claim.
func (s *Server) release(w string) {
	h := &s.hosted
	host, ok := h.hostOf[w]
	if !ok {
		return
	}
	delete(h.hostOf, w)
	if mine := h.workers[host]; mine != nil {
		delete(mine, w)
		if len(mine) == 0 {
			delete(h.workers, host)
		}
	}
	s.boundHost(host)
}

// hostClosed is the end of host's connection: each of its workers is a
// closed peer.
func (s *Server) hostClosed(host []byte, now time.Time) {
	for w := range s.hosted.workers[string(host)] {
		s.core.PeerClosed([]byte(w), now)
		s.release(w)
	}
}

// wrapHosted turns what is queued for hosted workers into Relays queued
// for their hosts, before a flush sends the queues.
func (s *Server) wrapHosted() {
	if len(s.hosted.hostOf) == 0 {
		return
	}
	n := len(s.outQueues)
	for i := 0; i < n; i++ {
		to, frames := s.outQueues[i].to, s.outQueues[i].frames
		host, ok := s.hosted.hostOf[string(to)]
		if !ok || len(frames) == 0 {
			continue
		}
		// One Relay per worker and Batch-sized piece of its frames. queue
		// may grow s.outQueues: index it again afterwards.
		for _, piece := range protocol.Pieces(frames) {
			s.queue([]byte(host), protocol.MustEncode(&protocol.Relay{Worker: to, Messages: piece}))
		}
		clear(frames)
		s.outQueues[i].frames = frames[:0]
	}
}

// hostLost handles the transport's report that host could not be delivered
// to (u): it is a lost peer for each of its workers, which the core
// removes (their tasks placed again). False if u.Peer hosts no worker.
func (s *Server) hostLost(u transport.Unreachable, now time.Time) bool {
	mine := s.hosted.workers[string(u.Peer)]
	if len(mine) == 0 {
		return false
	}
	n := len(mine)
	for w := range mine {
		if u.Full {
			s.core.DropPeer([]byte(w), now)
		} else {
			s.core.PeerUnreachable([]byte(w), now)
		}
		s.release(w)
	}
	if u.Full {
		s.log.Warn().Str("host", string(u.Peer)).Int("workers", n).Int("dropped_messages", u.Messages).
			Msgf("host of %d workers stopped reading: its queue stayed full (%d messages in zmq, a backlog past %d bytes); its workers dropped", n, routerHWM, peerBacklogBytes)
	} else {
		s.log.Info().Str("host", string(u.Peer)).Int("workers", n).Msg("host of workers unreachable; its workers removed")
	}
	return true
}

// reportRefusals logs, once a second at most, the relays dropped since the
// last report.
func (s *Server) reportRefusals() {
	h := &s.hosted
	if n := h.refusals - h.lastRefusals; n > 0 {
		h.lastRefusals = h.refusals
		s.log.Warn().Uint64("count", n).Str("example", h.refusedWhy).Msg("dropped relayed messages")
	}
}
