package server

import (
	"fmt"
	"slices"
	"testing"

	"github.com/opengris/scaler/core/protocol"
)

var heartbeatFrame = protocol.MustEncode(&protocol.WorkerHeartbeat{QueueSize: 1, Tasks: [][]byte{}})

// testHosting is a hosting whose core knows the ids in known, with small
// bounds, recording the backlog bounds it sets.
func testHosting(known map[string]bool, perHost, total int) (*hosting, map[string]int) {
	bounds := map[string]int{}
	h := newHosting(func(id string) bool { return known[id] }, func(host string, n int) {
		if n == 0 {
			delete(bounds, host)
		} else {
			bounds[host] = n
		}
	})
	h.perHost, h.total = perHost, total
	return &h, bounds
}

// TestHostingAdmit pins who may speak for whom, step by step.
func TestHostingAdmit(t *testing.T) {
	known := map[string]bool{"direct": true}
	h, bounds := testHosting(known, 2, 3)
	other := protocol.MustEncode(&protocol.TaskResult{TaskID: []byte("t"), Type: protocol.ResultSuccess})
	steps := []struct {
		host, worker string
		first        []byte
		want         bool
		why          string
	}{
		{"A", "w1", other, false, "a claim starts with a heartbeat"},
		{"A", "w1", nil, false, "a close of an unknown worker claims nothing"},
		{"A", "w1", heartbeatFrame, true, "A claims w1"},
		{"A", "w1", other, true, "then speaks for it"},
		{"B", "w1", heartbeatFrame, false, "B may not: A hosts w1"},
		{"A", "A", heartbeatFrame, false, "a connection is not its own worker"},
		{"B", "A", heartbeatFrame, false, "nor can another claim a host's id"},
		{"w1", "w9", heartbeatFrame, false, "a claimed id cannot host"},
		{"A", "direct", heartbeatFrame, false, "a peer the core has is not for hosting"},
		{"A", "", heartbeatFrame, false, "no empty id"},
		{"A", "w2", heartbeatFrame, true, "A's second"},
		{"A", "w3", heartbeatFrame, false, "past A's bound of 2, its workers both registered"},
	}
	// w1 and w2 are registered with the core from here on, so pruning keeps them.
	for i, st := range steps {
		if i == 3 {
			known["w1"] = true
		}
		if i == 11 {
			known["w2"] = true
		}
		if got := h.admit([]byte(st.host), st.worker, st.first); got != st.want {
			t.Fatalf("step %d (%s): admit(%s, %s) = %v", i, st.why, st.host, st.worker, got)
		}
	}
	if bounds["A"] != 2*peerBacklogBytes {
		t.Fatalf("A's backlog bound %d, want 2 workers' %d", bounds["A"], 2*peerBacklogBytes)
	}
	// w2 leaves the core: a full table is pruned, once a tick (the refused
	// claim of w3 pruned it in this one), and A can claim w3.
	known["w2"] = false
	if h.admit([]byte("A"), "w3", heartbeatFrame) {
		t.Fatal("A's full table was pruned twice in one tick")
	}
	h.nextTick()
	if !h.admit([]byte("A"), "w3", heartbeatFrame) {
		t.Fatal("A could not claim w3 after w2 left the core")
	}
	if _, ok := h.hostOf["w2"]; ok {
		t.Fatal("w2's claim survived the prune")
	}
	if bounds["A"] != 2*peerBacklogBytes {
		t.Fatalf("A's bound %d after the prune: it must not be lowered while A hosts workers", bounds["A"])
	}
	h.release("w1")
	h.release("w3")
	if len(h.hostOf) != 0 || len(h.workers) != 0 || bounds["A"] != 2*peerBacklogBytes {
		t.Fatalf("after releasing all: hostOf %v, workers %v, bounds %v (kept while A's connection lasts)", h.hostOf, h.workers, bounds)
	}
	h.forget("A")
	if len(bounds) != 0 {
		t.Fatalf("A's bound %v kept after its connection ended", bounds)
	}
}

// TestHostingReserves: the id of a worker the core removed is kept, for
// reserveTicks, for the host it may come back through (none for a worker
// that was connected directly); then anybody may claim it.
func TestHostingReserves(t *testing.T) {
	h, _ := testHosting(map[string]bool{}, 4, 4)
	if !h.admit([]byte("A"), "w1", heartbeatFrame) {
		t.Fatal("A could not claim w1")
	}
	h.left("w1") // removed by the core (say, A's connection broke)
	h.forget("A")
	h.left("d1") // a directly connected worker, removed
	for _, st := range []struct {
		host, worker string
		want         bool
		why          string
	}{
		{"B", "w1", false, "B may not take A's worker while it is reserved"},
		{"A", "w1", true, "A, back, may"},
		{"A", "d1", false, "nobody may take a direct worker's id"},
	} {
		if got := h.admit([]byte(st.host), st.worker, heartbeatFrame); got != st.want {
			t.Fatalf("%s: admit(%s, %s) = %v", st.why, st.host, st.worker, got)
		}
	}
	for i := 0; i < reserveTicks-1; i++ {
		h.nextTick()
	}
	if h.admit([]byte("B"), "d1", heartbeatFrame) {
		t.Fatal("d1's reservation ended a tick early")
	}
	h.nextTick()
	if !h.admit([]byte("B"), "d1", heartbeatFrame) {
		t.Fatal("d1 is still reserved after reserveTicks")
	}
	if len(h.reserved) != 0 || len(h.expiry) != 0 {
		t.Fatalf("reservations left: %v, %v", h.reserved, h.expiry)
	}
	// At most total reservations.
	for i := 0; i < 10; i++ {
		h.left(fmt.Sprintf("x%d", i))
	}
	if len(h.reserved) != h.total || len(h.expiry) != h.total {
		t.Fatalf("%d reservations, %d in expiry, bound %d", len(h.reserved), len(h.expiry), h.total)
	}
}

// A full table costs one prune a tick however many claims come: a Batch of
// 1,024 refused claims from one host, or for a table full of registered
// workers, asks the core about each claim at most once (plus the claims
// themselves).
func TestHostingPrunesOnceATick(t *testing.T) {
	for _, tc := range []struct {
		name          string
		hosts         int // hosts sharing the full table
		perHost, all  int
		wantPerBatchN int // most knows calls the Batch may cost
	}{
		{"one full host", 1, 64, 1 << 10, 64 + 1024},
		{"a full table", 16, 64, 1 << 10, 64 + 1<<10 + 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			known := map[string]bool{}
			calls := 0
			h := newHosting(func(id string) bool { calls++; return known[id] }, func(string, int) {})
			h.perHost, h.total = tc.perHost, tc.all
			for i := 0; len(h.hostOf) < min(tc.hosts*tc.perHost, tc.all); i++ {
				w := fmt.Sprintf("w%d", i)
				if !h.admit([]byte(fmt.Sprintf("h%d", i%tc.hosts)), w, heartbeatFrame) {
					t.Fatalf("claim %d refused", i)
				}
				known[w] = true // registered: a prune keeps it
			}
			calls = 0
			for i := 0; i < 1024; i++ { // one Batch of claims
				if h.admit([]byte("h0"), fmt.Sprintf("x%d", i), heartbeatFrame) {
					t.Fatalf("claim of x%d past the bound taken", i)
				}
			}
			if calls > tc.wantPerBatchN {
				t.Fatalf("the Batch asked the core %d times, want at most %d", calls, tc.wantPerBatchN)
			}
		})
	}
}

// FuzzHosting applies random admits, releases and prunes, from 4 hosts
// for 8 worker ids and the hosts' own ids, with a core that knows some of
// them, and checks the table's invariants after every step: each claim is
// in its host's set and nowhere else, hosts and hosted ids never mix, the
// bounds hold, no id the core knew was claimed, and each host's backlog
// bound is set only for a host that hosted workers since it was last
// forgotten (its connection ended), never below the most it hosted at once
// since then.
func FuzzHosting(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x80, 0x81, 0xc0, 0x40})
	f.Fuzz(func(t *testing.T, ops []byte) {
		known := map[string]bool{}
		h, bounds := testHosting(known, 3, 5)
		peak := map[string]int{} // most workers a host had at once since it was last forgotten
		ids := func(b byte) string {
			if b&8 != 0 {
				return fmt.Sprintf("h%d", b&3) // a host's own id
			}
			return fmt.Sprintf("w%d", b&7)
		}
		for i, op := range ops {
			host := fmt.Sprintf("h%d", (op>>4)&3)
			w := ids(op)
			switch op >> 6 {
			case 0, 1:
				first := heartbeatFrame
				if op&0x20 != 0 && op&1 != 0 {
					first = nil
				}
				claimedBefore := h.hostOf[w]
				knewIt := known[w]
				r, reserved := h.reserved[w]
				ok := h.admit([]byte(host), w, first)
				if ok && claimedBefore == "" && knewIt {
					t.Fatalf("op %d: %s claimed %s, which the core knows", i, host, w)
				}
				if ok && claimedBefore == "" && reserved && r.host != host {
					t.Fatalf("op %d: %s claimed %s, reserved for %q", i, host, w, r.host)
				}
			case 2:
				if op&0x20 != 0 {
					h.forget(host) // its connection ended
					delete(peak, host)
				} else {
					h.release(w)
				}
			case 3:
				switch {
				case op&0x20 != 0:
					known[w] = !known[w] // the core registers or drops it
					h.prune(host)
				case op&1 != 0:
					known[w] = false // the core removes it
					h.left(w)
				default:
					h.nextTick()
				}
			}
			if len(h.reserved) > h.total || len(h.expiry) > h.total {
				t.Fatalf("op %d: %d reservations, %d in expiry, bound %d", i, len(h.reserved), len(h.expiry), h.total)
			}
			for id, r := range h.reserved {
				if !slices.Contains(h.expiry, r) || r.worker != id {
					t.Fatalf("op %d: reservation %v of %s not in expiry", i, r, id)
				}
			}
			total := 0
			for hostID, mine := range h.workers {
				if len(mine) == 0 {
					t.Fatalf("op %d: empty set kept for %s", i, hostID)
				}
				if len(mine) > h.perHost {
					t.Fatalf("op %d: %s hosts %d > %d", i, hostID, len(mine), h.perHost)
				}
				if _, isHosted := h.hostOf[hostID]; isHosted {
					t.Fatalf("op %d: host %s is also a hosted worker", i, hostID)
				}
				for id := range mine {
					if h.hostOf[id] != hostID {
						t.Fatalf("op %d: %s in %s's set, but hostOf says %q", i, id, hostID, h.hostOf[id])
					}
				}
				peak[hostID] = max(peak[hostID], len(mine))
				if b := bounds[hostID]; b < min(peak[hostID]*peerBacklogBytes, maxHostBacklogBytes) {
					t.Fatalf("op %d: %s has hosted %d workers at once, with a backlog bound of %d", i, hostID, peak[hostID], b)
				}
				total += len(mine)
			}
			if total != len(h.hostOf) || total > h.total {
				t.Fatalf("op %d: %d in the sets, %d claims, bound %d", i, total, len(h.hostOf), h.total)
			}
			for hostID := range bounds {
				if peak[hostID] == 0 {
					t.Fatalf("op %d: %s has a backlog bound but hosted nobody since it was forgotten", i, hostID)
				}
			}
		}
	})
}
