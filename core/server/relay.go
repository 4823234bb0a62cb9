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
//
// Worker ids are not secret (the monitor publishes them), so the id of a
// worker the core removed stays reserved for a while (reserveTicks): for
// its host if it was hosted (a host whose connection broke comes back
// under the same routing id, with the same workers), for nobody if it was
// connected directly (it registers again directly). Nobody else may claim
// it meanwhile.

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
	// reserveTicks is how long a removed worker's id stays reserved (ticks
	// of tickInterval): a reconnect and the worker's next heartbeats.
	reserveTicks = 600
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

// hosting is the table of hosted workers and its rules. Its decisions are
// its own (tested alone, relay_hosting_test.go); what it needs of the rest
// of the server comes in as functions.
type hosting struct {
	hostOf  map[string]string              // hosted worker -> its host connection
	workers map[string]map[string]struct{} // host connection -> the workers it hosts
	bound   map[string]int                 // host connection -> its backlog bound (boundHost)

	knows    func(id string) bool         // the core has id as a peer (Scheduler.Knows)
	setBound func(host string, bytes int) // the transport's backlog bound of a host; 0: the default
	perHost  int                          // maxHostedPerConnection
	total    int                          // maxHostedWorkers

	// refusals counts relays dropped since start (not the host's, a full
	// table, a bad element); reported once a second with an example.
	refusals, lastRefusals uint64
	refusedWhy             string

	// tick counts the server's ticks (nextTick). A full table is pruned at
	// most once a tick, per host and in all: a prune asks the core about
	// every claim it covers, and one Batch may carry 1,024 claims.
	tick       uint64
	hostPruned map[string]uint64 // host -> tick of its last prune + 1
	allPruned  uint64            // tick of the last prune of every host + 1

	// reserved holds the ids of workers the core removed lately, each for
	// the host it may come back through ("": none, it was connected
	// directly); expiry is the same reservations in the order they end.
	// Both hold total entries at the most.
	reserved map[string]reservation
	expiry   []reservation
}

type reservation struct {
	worker, host string
	until        uint64 // the tick it ends
}

func newHosting(knows func(string) bool, setBound func(string, int)) hosting {
	return hosting{hostOf: map[string]string{}, workers: map[string]map[string]struct{}{}, bound: map[string]int{},
		knows: knows, setBound: setBound, perHost: maxHostedPerConnection, total: maxHostedWorkers,
		hostPruned: map[string]uint64{}, reserved: map[string]reservation{}}
}

// left records that the core removed worker w: its id is reserved for its
// host (if a connection hosts it) for reserveTicks. When as many ids are
// reserved as the table holds, a new one is not.
func (h *hosting) left(w string) {
	if w == "" || len(h.expiry) >= h.total {
		return
	}
	r := reservation{worker: w, host: h.hostOf[w], until: h.tick + reserveTicks}
	h.reserved[w] = r
	h.expiry = append(h.expiry, r)
}

// nextTick advances the tick and ends the reservations due.
func (h *hosting) nextTick() {
	h.tick++
	n := 0
	for ; n < len(h.expiry) && h.expiry[n].until <= h.tick; n++ {
		if r := h.expiry[n]; h.reserved[r.worker] == r {
			delete(h.reserved, r.worker)
		}
	}
	if n > 0 {
		h.expiry = append(h.expiry[:0], h.expiry[n:]...)
	}
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

// admit decides whether connection host may speak for worker w in a Relay
// whose first element is first (nil if none), claiming w when this is its
// first: false (and counted) if it may not.
func (h *hosting) admit(host []byte, w string, first []byte) bool {
	switch owner, ok := h.hostOf[w]; {
	case w == "" || w == string(host):
		h.refuse("a relay that names no worker, or its own connection")
		return false
	case h.claimed(host):
		h.refuse("a relay from a connection whose id a host claimed for a worker")
		return false
	case ok && owner != string(host):
		h.refuse("a relay for a worker that another connection hosts")
		return false
	case !ok:
		return h.claim(string(host), w, first)
	}
	return true
}

// claim makes host the host of worker w, whose first relayed message is
// first; false (and counted) if it may not. A claim starts with the
// worker's registration (a WorkerHeartbeat), so that relays of nothing
// claim nothing.
func (h *hosting) claim(host, w string, first []byte) bool {
	switch {
	case len(first) == 0 || protocol.Kind(first[0]) != protocol.KindWorkerHeartbeat:
		if first != nil { // a lone close of an unknown worker is no fault
			h.refuse("a relay for an unknown worker that does not start with its heartbeat")
		}
		return false
	case h.workers[w] != nil:
		h.refuse("a relay that names a host's own connection")
		return false
	case h.knows(w):
		h.refuse("a relay for a worker or client that is connected directly")
		return false
	}
	if r, ok := h.reserved[w]; ok {
		if r.host != host {
			h.refuse("a relay for a worker that left a moment ago (its id is kept for its own return)")
			return false
		}
		delete(h.reserved, w)
	}
	if len(h.workers[host]) >= h.perHost && h.hostPruned[host] != h.tick+1 {
		h.hostPruned[host] = h.tick + 1
		h.prune(host)
	}
	if len(h.hostOf) >= h.total && h.allPruned != h.tick+1 {
		h.allPruned = h.tick + 1
		for other := range h.workers {
			h.prune(other)
		}
	}
	mine := h.workers[host]
	if len(mine) >= h.perHost || len(h.hostOf) >= h.total {
		h.refuse("a relay for one more worker than the hosted workers' bound")
		return false
	}
	if mine == nil {
		mine = map[string]struct{}{}
		h.workers[host] = mine
	}
	mine[w] = struct{}{}
	h.hostOf[w] = host
	h.boundHost(host)
	return true
}

// boundHost raises host's backlog bound to what the workers it hosts now
// need. It is never lowered while the connection lasts (forget), so that
// what the transport already holds for the host stays within it.
func (h *hosting) boundHost(host string) {
	n := len(h.workers[host])
	if b := min(n*peerBacklogBytes, maxHostBacklogBytes); b > h.bound[host] {
		h.bound[host] = b
		h.setBound(host, b)
	}
}

// forget ends host: its claims and its backlog bound.
func (h *hosting) forget(host string) {
	delete(h.hostPruned, host)
	for w := range h.workers[host] {
		h.release(w)
	}
	if _, ok := h.bound[host]; ok {
		delete(h.bound, host)
		h.setBound(host, 0)
	}
}

// prune ends the claims of host's workers that the core has removed
// (timed out, disconnected): a host that restarts its workers under new
// ids does not fill its table with the old ones.
func (h *hosting) prune(host string) {
	for w := range h.workers[host] {
		if !h.knows(w) {
			h.release(w)
		}
	}
}

// release ends worker w's claim.
func (h *hosting) release(w string) {
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
}

// onRelay handles one Relay from connection host.
func (s *Server) onRelay(host []byte, r *protocol.Relay) {
	var first []byte
	if len(r.Messages) > 0 {
		first = r.Messages[0]
	}
	w := string(r.Worker)
	if !s.hosted.admit(host, w, first) {
		return
	}
	now := time.Now()
	for _, f := range r.Messages {
		if len(f) == 0 || !hostedKinds[protocol.Kind(f[0])] {
			s.hosted.refuse("a relayed message that is not a worker's")
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
		// What is queued for the worker was for a link that is gone; its
		// tasks are placed again now, and should the id be claimed again
		// in this round, it must not get them twice.
		if i, ok := s.outPeers[w]; ok {
			clear(s.outQueues[i].frames)
			s.outQueues[i].frames = s.outQueues[i].frames[:0]
		}
		s.core.PeerClosed(r.Worker, now)
		s.hosted.release(w)
	}
}

// hostClosed is the end of host's connection: each of its workers is a
// closed peer.
func (s *Server) hostClosed(host []byte, now time.Time) {
	for w := range s.hosted.workers[string(host)] {
		s.core.PeerClosed([]byte(w), now)
	}
	s.hosted.forget(string(host))
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
	}
	s.hosted.forget(string(u.Peer))
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
