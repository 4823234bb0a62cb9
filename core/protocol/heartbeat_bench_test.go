package protocol

import (
	"encoding/binary"
	"testing"
)

// BenchmarkDecodeWorkerHeartbeat1000 decodes a heartbeat listing 1,000
// 16-byte task ids (what a worker with a full default queue sends).
func BenchmarkDecodeWorkerHeartbeat1000(b *testing.B) {
	hb := &WorkerHeartbeat{QueueSize: 1000, EchoSeq: 7, Capabilities: map[string]int64{}}
	for i := 0; i < 1000; i++ {
		id := make([]byte, 16)
		binary.LittleEndian.PutUint64(id, uint64(i))
		hb.Tasks = append(hb.Tasks, id)
	}
	frame := MustEncode(hb)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}
