package server

import (
	"bytes"
	"testing"

	"github.com/opengris/scaler/core/protocol"
)

// A message the core hands to many peers (object deletions go to every
// worker) is encoded once and queued for each; a different message gets
// its own encoding.
func TestOutboxEncodesRepeatedMessageOnce(t *testing.T) {
	s := &Server{}
	o := outbox{s}
	del := &protocol.ObjectInstruction{Type: protocol.InstructionDelete,
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{bytes.Repeat([]byte{7}, 32)}}}
	other := &protocol.ObjectInstruction{Type: protocol.InstructionDelete,
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{bytes.Repeat([]byte{8}, 32)}}}
	o.Send([]byte("w1"), del)
	o.Send([]byte("w2"), del)
	o.Send([]byte("w3"), other)
	o.Send([]byte("w4"), del)
	if len(s.outQueues) != 4 {
		t.Fatalf("%d peers queued", len(s.outQueues))
	}
	frame := func(i int) []byte { return s.outQueues[i].frames[0] }
	if &frame(0)[0] != &frame(1)[0] {
		t.Fatal("the same message sent twice in a row was encoded twice")
	}
	for i, want := range []protocol.Message{del, del, other, del} {
		if !bytes.Equal(frame(i), protocol.MustEncode(want)) {
			t.Fatalf("peer %d got the wrong frame", i)
		}
	}
}

// BenchmarkOutboxBroadcast is one object deletion batch (4,096 ids) queued
// for 1,000 workers, as flushObjects does once a second at most.
func BenchmarkOutboxBroadcast(b *testing.B) {
	s := &Server{}
	o := outbox{s}
	ids := make([][]byte, 4096)
	for i := range ids {
		ids[i] = bytes.Repeat([]byte{byte(i)}, 32)
	}
	del := &protocol.ObjectInstruction{Type: protocol.InstructionDelete, Metadata: protocol.ObjectMetadata{ObjectIDs: ids}}
	peers := make([][]byte, 1000)
	for i := range peers {
		peers[i] = []byte{byte(i), byte(i >> 8), 'w'}
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for _, p := range peers {
			o.Send(p, del)
		}
		for j := range s.outQueues {
			s.outQueues[j].frames = s.outQueues[j].frames[:0]
		}
		s.outQueues = s.outQueues[:0]
		clear(s.outPeers)
	}
}
