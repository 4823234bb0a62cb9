package storage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// fakeClock drives a store's deadlines in these tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClockedStore(timeout time.Duration, perPeer int) (*store, *[]sent, *fakeClock) {
	s, out := newTestStore(0)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s.now, s.waitTimeout, s.maxPerPeer = clk.now, timeout, perPeer
	return s, out, clk
}

func getMsg(peer string, rid uint64, id string) [][]byte {
	return [][]byte{[]byte(peer), req(protocol.ObjectRequest{RequestID: rid, Type: protocol.ObjectGet, ObjectID: []byte(id)})}
}

func dupMsg(peer string, rid uint64, id, src string) [][]byte {
	return [][]byte{[]byte(peer), req(protocol.ObjectRequest{RequestID: rid, Type: protocol.ObjectDuplicate, ObjectID: []byte(id), SourceID: []byte(src)})}
}

func setMsg(peer string, rid uint64, id, data string) [][]byte {
	return [][]byte{[]byte(peer), req(protocol.ObjectRequest{RequestID: rid, Type: protocol.ObjectSet, ObjectID: []byte(id), PayloadLength: uint64(len(data))}), []byte(data)}
}

// replies decodes the replies sent since from, keyed by request id.
func replies(t *testing.T, out []sent, from int) map[uint64]*protocol.ObjectResponse {
	t.Helper()
	m := map[uint64]*protocol.ObjectResponse{}
	for _, o := range out[from:] {
		msg, err := protocol.Decode(o.frames[1])
		if err != nil {
			t.Fatal(err)
		}
		r := msg.(*protocol.ObjectResponse)
		if _, dup := m[r.RequestID]; dup {
			t.Fatalf("request %d answered twice", r.RequestID)
		}
		m[r.RequestID] = r
	}
	return m
}

func TestStoreWaitDeadline(t *testing.T) {
	s, out, clk := newClockedStore(60*time.Second, 100)
	s.handle(getMsg("p", 1, "never"))
	s.handle(dupMsg("p", 2, "copy", "never-src"))
	clk.advance(10 * time.Second)
	s.handle(getMsg("q", 3, "late"))
	s.handle(getMsg("q", 4, "never"))

	clk.advance(49 * time.Second) // 59 s after the first two
	s.expire()
	if len(*out) != 0 || s.waiting != 4 {
		t.Fatalf("before any deadline: %d replies, %d waiting", len(*out), s.waiting)
	}
	clk.advance(time.Second) // 60 s: requests 1 and 2 are due
	s.expire()
	r := replies(t, *out, 0)
	if len(r) != 2 || s.waiting != 2 {
		t.Fatalf("at the first deadline: %d replies %v, %d waiting", len(r), r, s.waiting)
	}
	for rid, want := range map[uint64]string{1: fmt.Sprintf("get: object %x did not appear within 1m0s", "never"),
		2: fmt.Sprintf("duplicate: source object %x did not appear within 1m0s", "never-src")} {
		if r[rid].Type != protocol.ObjectNotFound || r[rid].Error != want {
			t.Fatalf("reply to %d: %s %q, want notFound %q", rid, r[rid].Type, r[rid].Error, want)
		}
	}
	if string(r[2].ObjectID) != "copy" {
		t.Fatalf("duplicate's notFound echoes %q, want the new id", r[2].ObjectID)
	}

	// Request 3 is answered by a set before its deadline; its queue entry
	// must then be skipped, and request 4 on "never" still expires on time.
	n := len(*out)
	s.handle(setMsg("w", 5, "late", "data"))
	clk.advance(10 * time.Second)
	s.expire()
	r = replies(t, *out, n)
	if len(r) != 3 || r[3].Type != protocol.ObjectGetOK || r[5].Type != protocol.ObjectSetOK || r[4].Type != protocol.ObjectNotFound {
		t.Fatalf("replies %v", r)
	}
	if s.waiting != 0 || len(s.peers) != 0 || len(s.gets) != 0 || len(s.dups) != 0 {
		t.Fatalf("left: waiting %d, peers %d, gets %d, dups %d", s.waiting, len(s.peers), len(s.gets), len(s.dups))
	}
	checkInvariants(t, s, *out)
}

func TestStorePerPeerLimit(t *testing.T) {
	s, out, _ := newClockedStore(time.Minute, 3)
	for i := range 3 {
		s.handle(getMsg("p", uint64(i+1), fmt.Sprintf("x%d", i)))
	}
	s.handle(dupMsg("p", 4, "y", "x9"))
	r := replies(t, *out, 0)
	if len(r) != 1 || r[4].Type != protocol.ObjectError || !strings.Contains(r[4].Error, "too many waiting requests from this peer (limit 3)") {
		t.Fatalf("4th request of p: %v", r[4])
	}
	s.handle(getMsg("q", 5, "x0")) // another peer is not affected
	if s.waiting != 4 || len(*out) != 1 {
		t.Fatalf("waiting %d, replies %d", s.waiting, len(*out))
	}
	s.handle(setMsg("w", 6, "x0", "v")) // frees one of p's slots
	n := len(*out)
	s.handle(getMsg("p", 7, "x5"))
	if len(*out) != n || s.peers["p"].total != 3 {
		t.Fatalf("p after a release: %d replies, %d parked", len(*out)-n, s.peers["p"].total)
	}
	checkInvariants(t, s, *out)
}

func TestStoreDropPeer(t *testing.T) {
	s, out, clk := newClockedStore(time.Minute, 100)
	s.handle(getMsg("gone", 1, "a"))
	s.handle(getMsg("stay", 2, "a"))
	s.handle(getMsg("gone", 3, "a"))
	s.handle(dupMsg("gone", 4, "b", "a"))
	s.handle(getMsg("gone", 5, "c"))
	if n := s.dropPeer([]byte("gone")); n != 4 || s.waiting != 1 || s.peers["gone"] != nil {
		t.Fatalf("dropped %d, waiting %d", n, s.waiting)
	}
	if n := s.dropPeer([]byte("nobody")); n != 0 {
		t.Fatalf("dropped %d of an unknown peer", n)
	}
	checkInvariants(t, s, *out)
	s.handle(setMsg("w", 6, "a", "v"))
	clk.advance(2 * time.Minute)
	s.expire()
	r := replies(t, *out, 0)
	if len(r) != 2 || r[2].Type != protocol.ObjectGetOK || r[6].Type != protocol.ObjectSetOK {
		t.Fatalf("replies after the drop %v", r)
	}
	for _, o := range *out {
		if string(o.frames[0]) == "gone" {
			t.Fatal("a departed peer got a reply")
		}
	}
	if s.objects["b"] != nil {
		t.Fatal("a dropped duplicate was applied")
	}
	checkInvariants(t, s, *out)
}

// The deadline queue holds entries of requests answered early until they
// come due; it is compacted so that its length stays proportional to what
// is parked, and expiring costs nothing for requests not yet due.
func TestStoreDeadlineQueueBounded(t *testing.T) {
	s, out, clk := newClockedStore(time.Minute, 1<<20)
	const n = 100000
	for i := range n {
		id := fmt.Sprintf("o%d", i)
		s.handle(getMsg("p", uint64(i), id))
		s.handle(setMsg("w", uint64(n+i), id, "v"))
		if i%1000 == 0 {
			clk.advance(time.Millisecond)
			s.expire()
		}
	}
	s.expire()
	if q := len(s.deadlines) - s.head; q > 2*s.waiting+1024 || s.waiting != 0 {
		t.Fatalf("%d queue entries for %d parked requests", q, s.waiting)
	}
	if len(*out) != 2*n {
		t.Fatalf("%d replies, want %d", len(*out), 2*n)
	}
	checkInvariants(t, s, nil)
}
