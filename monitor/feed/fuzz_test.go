package feed

import (
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// FuzzHandle feeds arbitrary frames to the model, as a hostile publisher
// could: it must never panic, and every table stays within its bound. The
// input is split into frames at every 0xc1 byte (a byte msgpack never
// uses), so one input is a sequence of messages.
func FuzzHandle(f *testing.F) {
	p := ev("a", success, "f", "w")
	p.Profile = protocol.TaskProfile{DurationS: 1e300, MemoryPeak: ^uint64(0)}
	for _, m := range []protocol.Message{
		status("i", 1, 10), ev("a", running, "f", "w"), p, ev("a", canceling, "f", "w"), ev("b", inactive, "", ""),
		&protocol.StateWorker{WorkerID: []byte("w")}, &protocol.StateScheduler{TaskStates: []protocol.TaskStateCount{{State: 200, Count: 1}}},
	} {
		f.Add(protocol.MustEncode(m))
	}
	f.Add(append(append(protocol.MustEncode(ev("a", running, "f", "w")), 0xc1), protocol.MustEncode(status("j", 9, 3))...))
	f.Fuzz(func(t *testing.T, in []byte) {
		m := &model{}
		m.init("x")
		now := t0
		start := 0
		for i := 0; i <= len(in); i++ {
			if i == len(in) || in[i] == 0xc1 {
				m.handle(now, time.Second, [][]byte{in[start:i]})
				now = now.Add(700 * time.Millisecond)
				start = i + 1
			}
		}
		s := m.snapshot(now, time.Second)
		if len(s.Tasks) > MaxTasks || len(s.Running) > MaxRunning || len(s.Finished) != Seconds {
			t.Fatalf("bounds: %d %d %d", len(s.Tasks), len(s.Running), len(s.Finished))
		}
		for _, x := range append(s.Running, s.Tasks...) {
			if len(x.Function) > maxNameLen || len(x.Worker) > maxWorkerLen || len(x.ID) > 2*maxIDLen || x.Duration < 0 {
				t.Fatalf("task %+v", x)
			}
		}
	})
}
