package feed

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

var t0 = time.Unix(1_800_000_000, 0)

// step is one message arriving at an offset from t0.
type step struct {
	at  time.Duration
	msg protocol.Message
}

func run(steps []step) *model {
	m := &model{}
	m.init("tcp://x")
	for _, s := range steps {
		m.handle(t0.Add(s.at), 5*time.Second, [][]byte{protocol.MustEncode(s.msg)})
	}
	return m
}

func ev(id string, st protocol.TaskState, fn, worker string) *protocol.StateTask {
	return &protocol.StateTask{TaskID: []byte(id), State: st, FunctionName: []byte(fn), Worker: []byte(worker)}
}

func status(instance string, sent uint64, success uint64) *protocol.StateScheduler {
	return &protocol.StateScheduler{InstanceID: []byte(instance), MonitorSent: sent,
		TaskStates: []protocol.TaskStateCount{{State: protocol.TaskStateSuccess, Count: success}}}
}

const (
	running   = protocol.TaskStateRunning
	success   = protocol.TaskStateSuccess
	failed    = protocol.TaskStateFailed
	canceling = protocol.TaskStateCanceling
	canceled  = protocol.TaskStateCanceled
	inactive  = protocol.TaskStateInactive
)

func hexID(s string) string { return hex.EncodeToString([]byte(s)) }

func TestModelTasks(t *testing.T) {
	withProfile := ev("a", success, "", "")
	withProfile.Profile = protocol.TaskProfile{DurationS: 1.5, MemoryPeak: 4096}
	cases := []struct {
		name    string
		steps   []step
		tasks   []Task // want State.Tasks (newest first); Start/End checked as offsets below
		running []Task
	}{
		{"running then success with profile", []step{
			{0, ev("a", running, "f", "w1")}, {2 * time.Second, withProfile},
		}, []Task{{ID: hexID("a"), Function: "f", Worker: "w1", State: success, Start: t0, End: t0.Add(2 * time.Second),
			Duration: 1500 * time.Millisecond, PeakMem: 4096}}, nil},
		{"no profile: duration from the events", []step{
			{0, ev("a", running, "f", "w1")}, {3 * time.Second, ev("a", failed, "", "")},
		}, []Task{{ID: hexID("a"), Function: "f", Worker: "w1", State: failed, Start: t0, End: t0.Add(3 * time.Second),
			Duration: 3 * time.Second}}, nil},
		{"finish without a Running event names function and worker", []step{
			{time.Second, ev("b", success, "g", "w2")},
		}, []Task{{ID: hexID("b"), Function: "g", Worker: "w2", State: success, End: t0.Add(time.Second)}}, nil},
		{"a failed cancel keeps the start", []step{
			{0, ev("a", running, "f", "w1")}, {time.Second, ev("a", canceling, "f", "w1")},
			{2 * time.Second, ev("a", running, "f", "w1")},
		}, nil, []Task{{ID: hexID("a"), Function: "f", Worker: "w1", State: running, Start: t0}}},
		{"canceling shows on its worker", []step{
			{0, ev("a", running, "f", "w1")}, {time.Second, ev("a", canceling, "f", "w1")},
		}, nil, []Task{{ID: hexID("a"), Function: "f", Worker: "w1", State: canceling, Start: t0}}},
		{"back in the queue leaves the worker", []step{
			{0, ev("a", running, "f", "w1")}, {time.Second, ev("a", inactive, "f", "")},
		}, nil, nil},
		{"placed again elsewhere starts again", []step{
			{0, ev("a", running, "f", "w1")}, {time.Second, ev("a", inactive, "f", "")},
			{2 * time.Second, ev("a", running, "f", "w2")},
		}, nil, []Task{{ID: hexID("a"), Function: "f", Worker: "w2", State: running, Start: t0.Add(2 * time.Second)}}},
		{"newest first, running oldest first", []step{
			{0, ev("a", running, "f", "w1")}, {time.Second, ev("b", running, "f", "w1")},
			{2 * time.Second, ev("c", running, "f", "w1")},
			{3 * time.Second, ev("a", success, "f", "w1")}, {4 * time.Second, ev("c", canceled, "f", "w1")},
		}, []Task{
			{ID: hexID("c"), Function: "f", Worker: "w1", State: canceled, Start: t0.Add(2 * time.Second), End: t0.Add(4 * time.Second), Duration: 2 * time.Second},
			{ID: hexID("a"), Function: "f", Worker: "w1", State: success, Start: t0, End: t0.Add(3 * time.Second), Duration: 3 * time.Second},
		}, []Task{{ID: hexID("b"), Function: "f", Worker: "w1", State: running, Start: t0.Add(time.Second)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := run(c.steps)
			s := m.snapshot(t0.Add(5*time.Second), 5*time.Second)
			equalTasks(t, "Tasks", s.Tasks, c.tasks)
			equalTasks(t, "Running", s.Running, c.running)
		})
	}
}

func equalTasks(t *testing.T, what string, got, want []Task) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d tasks %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s[%d]:\n got  %+v\n want %+v", what, i, got[i], want[i])
		}
	}
}

// Totals and per-second counts follow the status's cumulative counts when
// task events were lost, and do not count twice what was seen.
func TestModelReconcilesWithStatus(t *testing.T) {
	cases := []struct {
		name     string
		steps    []step
		success  uint64 // want Totals.Finished[Success]
		perSec   uint64 // want the sum of Finished[].Success
		missed   uint64
		restarts int
		dropped  uint64
	}{
		{"events and status agree", []step{
			{0, status("i", 1, 10)}, {time.Second, ev("a", success, "f", "w")}, {time.Second, ev("b", success, "f", "w")},
			{2 * time.Second, status("i", 4, 12)},
		}, 2, 2, 0, 0, 0},
		{"lost events are added from the status", []step{
			{0, status("i", 1, 10)}, {time.Second, ev("a", success, "f", "w")},
			{2 * time.Second, status("i", 10, 15)},
		}, 5, 5, 7, 0, 0}, // 9 published since the first status, 2 received
		{"lost statuses too", []step{
			{0, status("i", 1, 0)}, {5 * time.Second, status("i", 100, 40)},
		}, 40, 40, 98, 0, 0},
		{"events before the first status count, the status is the baseline", []step{
			{0, ev("a", success, "f", "w")}, {time.Second, status("i", 50, 1000)},
			{2 * time.Second, status("i", 51, 1000)},
		}, 1, 1, 0, 0, 0},
		{"a fast restart is counted and the new counts added", []step{
			{0, status("i", 1, 10)}, {time.Second, status("j", 1, 3)},
		}, 3, 3, 0, 1, 0},
		{"a restart after an outage is counted once", []step{
			{0, status("i", 1, 10)}, {time.Minute, status("j", 1, 3)},
		}, 3, 3, 0, 1, 0},
		{"an outage of the same scheduler", []step{
			{0, status("i", 1, 10)}, {time.Minute, status("i", 30, 13)},
		}, 3, 3, 28, 1, 0},
		{"dropped comes from the status", []step{
			{0, &protocol.StateScheduler{InstanceID: []byte("i"), MonitorDropped: 77}},
		}, 0, 0, 0, 0, 77},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := run(c.steps)
			last := c.steps[len(c.steps)-1].at
			s := m.snapshot(t0.Add(last), 5*time.Second)
			var perSec uint64
			for _, sec := range s.Finished {
				perSec += sec.Success
			}
			if got := s.Totals.Finished[success]; got != c.success || perSec != c.perSec || s.Missed != c.missed ||
				s.Restarts != c.restarts || s.Dropped != c.dropped {
				t.Errorf("totals %d per-second %d missed %d restarts %d dropped %d; want %d %d %d %d %d",
					got, perSec, s.Missed, s.Restarts, s.Dropped, c.success, c.perSec, c.missed, c.restarts, c.dropped)
			}
			if len(s.Finished) != Seconds || !s.Finished[Seconds-1].At.Equal(t0.Add(last).Truncate(time.Second)) {
				t.Errorf("Finished: %d seconds ending %v", len(s.Finished), s.Finished[len(s.Finished)-1].At)
			}
		})
	}
}

func TestModelRestartClearsRunning(t *testing.T) {
	m := run([]step{{0, status("i", 1, 0)}, {0, ev("a", running, "f", "w")}, {time.Second, status("j", 1, 0)}})
	if s := m.snapshot(t0.Add(time.Second), 5*time.Second); len(s.Running) != 0 || s.Restarts != 1 {
		t.Fatalf("after a restart: running %v restarts %d", s.Running, s.Restarts)
	}
}

// Every table stays within its bound whatever the feed sends.
func TestModelBounds(t *testing.T) {
	m := &model{}
	m.init("x")
	long := strings.Repeat("n", 10000)
	for i := 0; i < 3*MaxRunning; i++ {
		id := []byte{byte(i), byte(i >> 8), byte(i >> 16), 1}
		m.handle(t0, time.Hour, [][]byte{protocol.MustEncode(&protocol.StateTask{TaskID: append(id, long...), State: running,
			FunctionName: []byte(long), Worker: []byte(long)})})
		if i%2 == 0 {
			m.handle(t0, time.Hour, [][]byte{protocol.MustEncode(&protocol.StateTask{TaskID: append(id, long...), State: success})})
		}
		if n := len(m.running.order) - m.running.head; n > 2*MaxRunning+16 {
			t.Fatalf("running order log has %d entries", n)
		}
	}
	s := m.snapshot(t0, time.Hour)
	if len(s.Running) != MaxRunning || len(s.Tasks) != MaxTasks || len(s.Finished) != Seconds {
		t.Fatalf("running %d tasks %d seconds %d", len(s.Running), len(s.Tasks), len(s.Finished))
	}
	for _, x := range append(s.Running, s.Tasks...) {
		if len(x.ID) > 2*maxIDLen || len(x.Function) > maxNameLen || len(x.Worker) > maxWorkerLen {
			t.Fatalf("unclipped task %d %d %d", len(x.ID), len(x.Function), len(x.Worker))
		}
	}
	// The oldest went first: the newest task is still tracked.
	last := 3*MaxRunning - 1
	id := hexID(string(append([]byte{byte(last), byte(last >> 8), byte(last >> 16), 1}, long...)[:maxIDLen]))
	if _, ok := m.running.get(id); !ok {
		t.Fatal("newest running task evicted")
	}
}

// The State handed out shares nothing with the model.
func TestSnapshotIsACopy(t *testing.T) {
	st := status("i", 1, 5)
	st.Workers = []protocol.WorkerStatus{{Processors: []protocol.ProcessorStatus{{PID: 1}}}}
	m := run([]step{{0, st}})
	a := m.snapshot(t0, time.Second)
	a.Status.Workers[0].Processors[0].PID = 99
	a.Status.TaskStates[0].Count = 99
	a.Totals.Finished[success] = 99
	b := m.snapshot(t0, time.Second)
	if b.Status.Workers[0].Processors[0].PID != 1 || b.Status.TaskStates[0].Count != 5 || b.Totals.Finished[success] == 99 {
		t.Fatal("a snapshot shares memory with the model")
	}
}

func TestStale(t *testing.T) {
	m := &model{}
	m.init("x")
	if s := m.snapshot(t0, time.Second); !s.Stale {
		t.Fatal("not stale before any message")
	}
	m.handle(t0, time.Second, [][]byte{protocol.MustEncode(status("i", 1, 0))})
	if s := m.snapshot(t0.Add(time.Second), time.Second); s.Stale {
		t.Fatal("stale within the timeout")
	}
	if m.checkStale(t0.Add(time.Second), time.Second) {
		t.Fatal("turned stale within the timeout")
	}
	if !m.checkStale(t0.Add(2*time.Second), time.Second) || m.checkStale(t0.Add(3*time.Second), time.Second) {
		t.Fatal("checkStale must report the turn once")
	}
	if s := m.snapshot(t0.Add(2*time.Second), time.Second); !s.Stale || !s.Updated.Equal(t0) {
		t.Fatalf("stale state %+v", s)
	}
	if back, _ := m.handle(t0.Add(4*time.Second), time.Second, [][]byte{protocol.MustEncode(status("i", 2, 0))}); !back {
		t.Fatal("coming back not reported")
	}
	// Garbage is counted, not taken as news.
	if _, bad := m.handle(t0.Add(9*time.Second), time.Second, [][]byte{{0xff, 1, 2}}); bad != 1 {
		t.Fatal("garbage not reported")
	}
	if s := m.snapshot(t0.Add(9*time.Second), time.Second); !s.Stale || s.Restarts != 1 {
		t.Fatalf("after garbage: %+v", s)
	}
}

// The status corrects the running table when finish events were lost: a
// worker that left takes its tasks along, and a worker keeps at most the
// tasks the scheduler has assigned to it, the newest.
func TestModelRunningFollowsStatus(t *testing.T) {
	st := status("i", 1, 0)
	st.Workers = []protocol.WorkerStatus{{WorkerID: []byte("w1"), Sent: 1}, {WorkerID: []byte("w3"), Sent: 5}}
	m := run([]step{
		{0, ev("a", running, "f", "w1")}, {time.Second, ev("b", running, "f", "w1")}, {2 * time.Second, ev("c", running, "f", "w1")},
		{0, ev("d", running, "f", "w2")}, {0, ev("e", running, "f", "w3")}, {3 * time.Second, st},
	})
	s := m.snapshot(t0.Add(3*time.Second), 5*time.Second)
	equalTasks(t, "Running", s.Running, []Task{
		{ID: hexID("e"), Function: "f", Worker: "w3", State: running, Start: t0},
		{ID: hexID("c"), Function: "f", Worker: "w1", State: running, Start: t0.Add(2 * time.Second)},
	})
}
