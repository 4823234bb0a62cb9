package storage

import (
	"fmt"
	"sort"

	"github.com/opengris/scaler/core/protocol"
)

// Parked requests: admission against the global and per-peer bounds, the
// deadline queue, and dropping the requests of a peer that left. All of it
// runs on the store's goroutine, like the rest of the store.

// park admits one more parked request of peer waiting on key and returns its
// seq, or the reason it is refused.
func (s *store) park(peer []byte, key string, dup bool) (uint64, error) {
	if s.waiting >= maxWaitingRequests {
		return 0, errTooManyWaits
	}
	pw := s.peers[string(peer)]
	if pw != nil && pw.total >= s.maxPerPeer {
		return 0, fmt.Errorf("%w (limit %d)", errPeerWaits, s.maxPerPeer)
	}
	if pw == nil {
		pw = &peerWaits{keys: make(map[string]int, 1)}
		s.peers[string(peer)] = pw
	}
	pw.total++
	pw.keys[key]++
	s.waiting++
	s.seq++
	s.deadlines = append(s.deadlines, deadline{at: s.now().Add(s.waitTimeout), key: key, seq: s.seq, dup: dup})
	return s.seq, nil
}

// unpark forgets one parked request of peer on key (answered or expired).
func (s *store) unpark(peer []byte, key string) {
	s.waiting--
	pw := s.peers[string(peer)]
	if pw == nil {
		return
	}
	if pw.keys[key]--; pw.keys[key] <= 0 {
		delete(pw.keys, key)
	}
	if pw.total--; pw.total <= 0 {
		delete(s.peers, string(peer))
	}
}

// expire answers notFound to every parked request whose deadline has passed.
// It is called on the server's tick, so a request waits its timeout plus at
// most one tick.
func (s *store) expire() {
	now := s.now()
	for s.head < len(s.deadlines) && !now.Before(s.deadlines[s.head].at) {
		d := s.deadlines[s.head]
		s.deadlines[s.head] = deadline{} // let the key string go
		s.head++
		s.expireOne(d)
	}
	// Keep the queue's memory proportional to what is parked: drop the
	// consumed prefix, and the entries of requests answered early when they
	// outnumber the live ones (amortized O(1) per entry either way).
	if live := len(s.deadlines) - s.head; live > 2*s.waiting+1024 {
		kept := s.deadlines[:0]
		for _, d := range s.deadlines[s.head:] {
			if s.parked(d) {
				kept = append(kept, d)
			}
		}
		clear(s.deadlines[len(kept):])
		s.deadlines, s.head = kept, 0
	} else if s.head > 1024 && s.head >= len(s.deadlines)/2 {
		n := copy(s.deadlines, s.deadlines[s.head:])
		clear(s.deadlines[n:])
		s.deadlines, s.head = s.deadlines[:n], 0
	}
}

// expireOne answers the request of d if it is still parked. It is then the
// first of its list: the list is in seq order and every request parked
// before it has reached its deadline earlier (and left).
func (s *store) expireOne(d deadline) {
	var req parkedReq
	var resp *protocol.ObjectResponse
	if d.dup {
		w, ok := takeFirst(s.dups, d.key, d.seq)
		if !ok {
			return
		}
		req, resp = w.parkedReq, &protocol.ObjectResponse{ObjectID: w.newID,
			Error: fmt.Sprintf("duplicate: source object %x did not appear within %v", d.key, s.waitTimeout)}
	} else {
		w, ok := takeFirst(s.gets, d.key, d.seq)
		if !ok {
			return
		}
		req, resp = w.parkedReq, &protocol.ObjectResponse{ObjectID: w.objectID,
			Error: fmt.Sprintf("get: object %x did not appear within %v", d.key, s.waitTimeout)}
	}
	resp.RequestID, resp.Type = req.reqID, protocol.ObjectNotFound
	s.unpark(req.peer, d.key)
	s.expired++
	s.reply(req.peer, resp)
}

// parked reports whether the request of d is still waiting.
func (s *store) parked(d deadline) bool {
	if d.dup {
		return holds(s.dups[d.key], d.seq)
	}
	return holds(s.gets[d.key], d.seq)
}

// dropPeer forgets every parked request of peer, whose connection closed:
// nobody would receive their replies. It returns how many were dropped.
// Their deadline entries are skipped when they come due.
func (s *store) dropPeer(peer []byte) int {
	pw := s.peers[string(peer)]
	if pw == nil {
		return 0
	}
	n := 0
	for key := range pw.keys {
		n += dropWaiters(s.gets, key, peer) + dropWaiters(s.dups, key, peer)
	}
	delete(s.peers, string(peer))
	s.waiting -= n
	s.dropped += n
	return n
}

// waiter is a parked get (getWaiter) or duplicate (dupWaiter): the lists of
// both are kept alike, by the functions below.
type waiter interface{ request() parkedReq }

// takeFirst removes and returns the first waiter on key if it is request
// seq.
func takeFirst[W waiter](lists map[string][]W, key string, seq uint64) (W, bool) {
	ws := lists[key]
	if len(ws) == 0 || ws[0].request().seq != seq {
		var none W
		return none, false
	}
	w := ws[0]
	if len(ws) == 1 {
		delete(lists, key)
	} else {
		lists[key] = ws[1:]
	}
	return w, true
}

// holds reports whether request seq is in ws, which is in seq order.
func holds[W waiter](ws []W, seq uint64) bool {
	i := sort.Search(len(ws), func(i int) bool { return ws[i].request().seq >= seq })
	return i < len(ws) && ws[i].request().seq == seq
}

// dropWaiters removes the waiters of peer on key and returns how many.
func dropWaiters[W waiter](lists map[string][]W, key string, peer []byte) int {
	ws, ok := lists[key]
	if !ok {
		return 0
	}
	kept := ws[:0]
	for _, w := range ws {
		if string(w.request().peer) != string(peer) {
			kept = append(kept, w)
		}
	}
	clear(ws[len(kept):])
	if len(kept) == 0 {
		delete(lists, key)
	} else {
		lists[key] = kept
	}
	return len(ws) - len(kept)
}

// reportWaits logs, at most once per call (the server calls it once per
// tick), how many parked requests expired or were dropped since the last
// call: a peer can make many of either, so never one line each.
func (s *store) reportWaits() {
	if s.expired == 0 && s.dropped == 0 {
		return
	}
	s.log.Info().Int("expired", s.expired).Int("dropped_departed", s.dropped).Int("waiting", s.waiting).
		Stringer("wait_timeout", s.waitTimeout).Msg("parked requests ended without their object")
	s.expired, s.dropped = 0, 0
}
