package storage

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
)

// These tests drive the store directly, without sockets.

type sent struct{ frames [][]byte }

func newTestStore(maxMemory int64) (*store, *[]sent) {
	var out []sent
	s := newStore(maxMemory, zerolog.Nop(), func(frames ...[]byte) { out = append(out, sent{frames}) })
	return s, &out
}

// checkInvariants verifies the store's counters against its maps and that
// every reply is well formed.
func checkInvariants(t *testing.T, s *store, out []sent) {
	t.Helper()
	unique := map[*content]bool{}
	var bytes int64
	for _, c := range s.objects {
		if c == nil || c.refs <= 0 {
			t.Fatalf("stored content with refs %v", c)
		}
		if !unique[c] {
			unique[c] = true
			bytes += int64(len(c.data))
		}
	}
	refs := map[*content]int{}
	for _, c := range s.objects {
		refs[c]++
	}
	for c, n := range refs {
		if c.refs != n {
			t.Fatalf("content refs %d, referenced by %d ids", c.refs, n)
		}
	}
	if bytes != s.used || len(unique) != s.contents {
		t.Fatalf("used %d / contents %d, want %d / %d", s.used, s.contents, bytes, len(unique))
	}
	waiting := 0
	for k, ws := range s.gets {
		if len(ws) == 0 || s.objects[k] != nil {
			t.Fatalf("get waiters %d for id that exists=%v", len(ws), s.objects[k] != nil)
		}
		waiting += len(ws)
	}
	for k, ds := range s.dups {
		if len(ds) == 0 || s.objects[k] != nil {
			t.Fatalf("dup waiters %d for source that exists=%v", len(ds), s.objects[k] != nil)
		}
		waiting += len(ds)
	}
	if waiting != s.waiting {
		t.Fatalf("waiting %d, want %d", s.waiting, waiting)
	}
	perPeer := 0
	for _, pw := range s.peers {
		keys := 0
		for _, n := range pw.keys {
			keys += n
		}
		if pw.total <= 0 || keys != pw.total || pw.total > s.maxPerPeer {
			t.Fatalf("peer total %d, per-key sum %d, limit %d", pw.total, keys, s.maxPerPeer)
		}
		perPeer += pw.total
	}
	if perPeer != s.waiting {
		t.Fatalf("per-peer counts sum to %d, waiting %d", perPeer, s.waiting)
	}
	if live := 0; true {
		for _, d := range s.deadlines[s.head:] {
			if s.parked(d) {
				live++
			}
		}
		if live != s.waiting {
			t.Fatalf("%d deadline entries of parked requests, waiting %d", live, s.waiting)
		}
	}
	if s.maxMemory > 0 && s.used > s.maxMemory {
		t.Fatalf("used %d over limit %d", s.used, s.maxMemory)
	}
	for _, o := range out {
		if len(o.frames) < 2 || len(o.frames) > 3 {
			t.Fatalf("reply with %d frames", len(o.frames))
		}
		m, err := protocol.Decode(o.frames[1])
		if err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
		r := m.(*protocol.ObjectResponse)
		wantFrames := 2
		if r.Type == protocol.ObjectGetOK && r.PayloadLength > 0 {
			wantFrames = 3
			if uint64(len(o.frames[2])) != r.PayloadLength {
				t.Fatalf("payload %d bytes, header says %d", len(o.frames[2]), r.PayloadLength)
			}
		}
		if len(o.frames) != wantFrames {
			t.Fatalf("%s reply with %d frames", r.Type, len(o.frames))
		}
	}
}

func req(r protocol.ObjectRequest) []byte { return protocol.MustEncode(&r) }

// encodeMessages packs messages into the fuzz input format: per message a
// frame count byte, then per frame a 2-byte little-endian length and the
// bytes.
func encodeMessages(msgs ...[][]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, byte(len(m)))
		for _, f := range m {
			b = binary.LittleEndian.AppendUint16(b, uint16(len(f)))
			b = append(b, f...)
		}
	}
	return b
}

// decodeMessages is the inverse of encodeMessages; it tolerates any input,
// cutting frames short at the end.
func decodeMessages(b []byte) [][][]byte {
	var msgs [][][]byte
	for len(b) > 0 && len(msgs) < 64 {
		n := int(b[0] % 6)
		b = b[1:]
		msg := make([][]byte, 0, n)
		for range n {
			l := 0
			if len(b) >= 2 {
				l = int(binary.LittleEndian.Uint16(b))
				b = b[2:]
			} else {
				b = nil
			}
			l = min(l, len(b))
			msg = append(msg, b[:l:l])
			b = b[l:]
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// FuzzHandleRequest feeds arbitrary message sequences (any frame count, any
// bytes) into the request handler and checks that it never panics and that
// the store stays consistent.
func FuzzHandleRequest(f *testing.F) {
	a, b, c := []byte("object-a"), []byte("object-b"), []byte("object-c")
	p, q := []byte("peer-1"), []byte("peer-2")
	f.Add(encodeMessages(
		[][]byte{p, req(protocol.ObjectRequest{RequestID: 1, Type: protocol.ObjectGet, ObjectID: c})},
		[][]byte{q, req(protocol.ObjectRequest{RequestID: 2, Type: protocol.ObjectDuplicate, ObjectID: c, SourceID: b})},
		[][]byte{q, req(protocol.ObjectRequest{RequestID: 3, Type: protocol.ObjectDuplicate, ObjectID: b, SourceID: a})},
		[][]byte{p, req(protocol.ObjectRequest{RequestID: 4, Type: protocol.ObjectSet, ObjectID: a, PayloadLength: 5}), []byte("hello")},
		[][]byte{p, req(protocol.ObjectRequest{RequestID: 5, Type: protocol.ObjectGet, ObjectID: b, MaxLength: 2})},
		[][]byte{p, req(protocol.ObjectRequest{RequestID: 6, Type: protocol.ObjectDelete, ObjectID: a})},
		[][]byte{q, req(protocol.ObjectRequest{RequestID: 7, Type: protocol.ObjectStats})},
	))
	f.Add(encodeMessages(
		[][]byte{p, req(protocol.ObjectRequest{RequestID: 1, Type: protocol.ObjectSet, ObjectID: a, PayloadLength: 3})},
		[][]byte{p, req(protocol.ObjectRequest{RequestID: 2, Type: protocol.ObjectSet, ObjectID: a, PayloadLength: 1}), {1}, {2}},
		[][]byte{p, req(protocol.ObjectRequest{RequestID: 3, Type: protocol.ObjectGet, ObjectID: a})[:20]},
		[][]byte{p},
		[][]byte{},
		[][]byte{p, {byte(protocol.KindObjectRequest), 0x81, 0xaa}},
		[][]byte{q, req(protocol.ObjectRequest{RequestID: 4, Type: protocol.ObjectDuplicate, ObjectID: a, SourceID: a})},
		[][]byte{q, req(protocol.ObjectRequest{RequestID: 5, Type: protocol.ObjectSet, ObjectID: a, PayloadLength: 0}), {}},
	))
	f.Add([]byte{})
	f.Add([]byte{2, 1, 0, 'x', 3, 0, 96, 0x80, 0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, out := newTestStore(64)
		s.bad.now = func() time.Time { return time.Unix(0, 0) }
		now := time.Unix(0, 0)
		s.now = func() time.Time { return now }
		s.waitTimeout, s.maxPerPeer = 5*time.Second, 4
		for i, msg := range decodeMessages(data) {
			s.handle(msg)
			now = now.Add(time.Second)
			s.expire()
			if i%7 == 6 && len(msg) > 0 {
				s.dropPeer(msg[0])
			}
		}
		checkInvariants(t, s, *out)
		now = now.Add(10 * time.Second)
		s.expire()
		checkInvariants(t, s, *out)
		if s.waiting != 0 {
			t.Fatalf("%d requests still parked after every deadline", s.waiting)
		}
	})
}

func TestStoreChainsAndCycles(t *testing.T) {
	s, out := newTestStore(0)
	p := []byte("p")
	ids := [][]byte{[]byte("x0"), []byte("x1"), []byte("x2"), []byte("x3")}
	// A cycle x0 <- x1 <- x0 and a long chain x3 <- x2 <- x1, all parked.
	s.handle([][]byte{p, req(protocol.ObjectRequest{RequestID: 1, Type: protocol.ObjectDuplicate, ObjectID: ids[0], SourceID: ids[1]})})
	s.handle([][]byte{p, req(protocol.ObjectRequest{RequestID: 2, Type: protocol.ObjectDuplicate, ObjectID: ids[1], SourceID: ids[0]})})
	s.handle([][]byte{p, req(protocol.ObjectRequest{RequestID: 3, Type: protocol.ObjectDuplicate, ObjectID: ids[2], SourceID: ids[1]})})
	s.handle([][]byte{p, req(protocol.ObjectRequest{RequestID: 4, Type: protocol.ObjectDuplicate, ObjectID: ids[3], SourceID: ids[2]})})
	s.handle([][]byte{p, req(protocol.ObjectRequest{RequestID: 5, Type: protocol.ObjectGet, ObjectID: ids[3]})})
	if len(*out) != 0 || s.waiting != 5 {
		t.Fatalf("replies %d, waiting %d; want 0, 5", len(*out), s.waiting)
	}
	s.handle([][]byte{p, req(protocol.ObjectRequest{RequestID: 6, Type: protocol.ObjectSet, ObjectID: ids[0], PayloadLength: 3}), []byte("abc")})
	checkInvariants(t, s, *out)
	if s.waiting != 0 || len(s.objects) != 4 || s.contents != 1 || len(*out) != 6 {
		t.Fatalf("waiting %d, objects %d, contents %d, replies %d", s.waiting, len(s.objects), s.contents, len(*out))
	}

	// A long chain is released without recursion.
	s, out = newTestStore(0)
	const n = 100000
	s.maxPerPeer = n // one peer parks them all
	for i := n; i > 0; i-- {
		s.handle([][]byte{p, req(protocol.ObjectRequest{RequestID: uint64(i), Type: protocol.ObjectDuplicate,
			ObjectID: binary.AppendUvarint([]byte("c"), uint64(i)), SourceID: binary.AppendUvarint([]byte("c"), uint64(i-1))})})
	}
	s.handle([][]byte{p, req(protocol.ObjectRequest{Type: protocol.ObjectSet, ObjectID: binary.AppendUvarint([]byte("c"), 0), PayloadLength: 1}), {1}})
	if s.waiting != 0 || len(s.objects) != n+1 || len(*out) != n+1 {
		t.Fatalf("waiting %d, objects %d, replies %d", s.waiting, len(s.objects), len(*out))
	}
}

func TestStoreWaitingLimit(t *testing.T) {
	s, out := newTestStore(0)
	s.waiting = maxWaitingRequests
	s.handle([][]byte{[]byte("p"), req(protocol.ObjectRequest{RequestID: 9, Type: protocol.ObjectGet, ObjectID: []byte("x")})})
	if len(*out) != 1 {
		t.Fatalf("replies %d", len(*out))
	}
	m, _ := protocol.Decode((*out)[0].frames[1])
	if r := m.(*protocol.ObjectResponse); r.Type != protocol.ObjectError || r.RequestID != 9 {
		t.Fatalf("reply %+v", r)
	}
}

func TestRateLimitedLog(t *testing.T) {
	var buf logBuffer
	now := time.Unix(100, 0)
	r := rateLimitedLog{log: zerolog.New(&buf), now: func() time.Time { return now }}
	for range 5 {
		r.report([]byte("p"), "get", errObjectID)
	}
	now = now.Add(1500 * time.Millisecond)
	r.report([]byte("p"), "get", errObjectID)
	if buf.lines != 2 || r.suppressed != 0 {
		t.Fatalf("logged %d lines, want 2", buf.lines)
	}
}

type logBuffer struct{ lines int }

func (b *logBuffer) Write(p []byte) (int, error) { b.lines++; return len(p), nil }
