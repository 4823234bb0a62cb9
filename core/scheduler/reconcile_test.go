package scheduler

import (
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// hb is a heartbeat of a reconciling worker that holds ids and has
// received echo seq.
func hb(seq uint64, ids ...string) *protocol.WorkerHeartbeat {
	m := &protocol.WorkerHeartbeat{QueueSize: 10, EchoSeq: seq, Tasks: [][]byte{}}
	for _, id := range ids {
		m.Tasks = append(m.Tasks, []byte(id))
	}
	return m
}

// lastEchoSeq returns the Seq of the last echo to w in ss.
func lastEchoSeq(t *testing.T, ss []sent, w string) uint64 {
	t.Helper()
	for i := len(ss) - 1; i >= 0; i-- {
		if e, ok := ss[i].msg.(*protocol.WorkerHeartbeatEcho); ok && ss[i].to == w {
			return e.Seq
		}
	}
	t.Fatalf("no echo to %s in %v", w, describe(ss))
	return 0
}

func TestEchoSeqCountsPerWorker(t *testing.T) {
	h := newHarness(t, nil)
	h.handle("w", hb(0))
	if got := lastEchoSeq(t, h.take(), "w"); got != 1 {
		t.Fatalf("first echo seq %d, want 1", got)
	}
	h.handle("w", hb(1))
	if got := lastEchoSeq(t, h.take(), "w"); got != 2 {
		t.Fatalf("second echo seq %d, want 2", got)
	}
	// A worker registering again (here: with a new scheduler) continues
	// from the seq it reports, so its old count is never ahead.
	h2 := newHarness(t, nil)
	h2.handle("w", hb(57))
	if got := lastEchoSeq(t, h2.take(), "w"); got != 58 {
		t.Fatalf("re-registration echo seq %d, want 58", got)
	}
}

// TestReconcile is the rule of docs/protocol.md "Reconciliation", step by
// step: worker w registered (echo 1 sent), then t1 assigned (before echo
// 2), then what each case does.
func TestReconcile(t *testing.T) {
	type step struct {
		name string
		do   func(h *harness)
		want []string // messages sent, echoes left out
	}
	setup := func(h *harness) {
		h.client("c")
		h.handle("w", hb(0)) // registers; echo 1
		h.handle("w2", &protocol.WorkerHeartbeat{QueueSize: 10})
		h.submit("c", "t1") // to w (registered first, same load)
		h.take()
	}
	cases := []struct {
		name  string
		steps []step
		lost  uint64
	}{
		{"heartbeat written before the task arrived does not lose it", []step{
			// EchoSeq 1: the worker had not yet received echo 2, which
			// follows t1, so it may not have t1 yet.
			{"hb seq 1 without t1", func(h *harness) { h.handle("w", hb(1)) }, nil},
			{"hb seq 2 with t1", func(h *harness) { h.handle("w", hb(2, "t1")) }, nil},
			{"result", func(h *harness) { h.result("w", "t1", protocol.ResultSuccess, "r") }, []string{"c:Result(t1,Success,1)"}},
		}, 0},
		{"task missing after the echo that follows it is placed again", []step{
			{"hb seq 1", func(h *harness) { h.handle("w", hb(1)) }, nil},
			// Echo 2 was sent after t1: the worker got t1 and does not
			// hold it, and no result came: placed again (w and w2 are
			// equally loaded now; w2 registered later, w sorts first).
			{"hb seq 2 without t1", func(h *harness) { h.handle("w", hb(2)) }, []string{"w:Task(t1)"}},
			// The task was sent again after echo 2, so only seq 3 counts.
			{"hb seq 2 again", func(h *harness) { h.handle("w", hb(2)) }, nil},
			{"result", func(h *harness) { h.result("w", "t1", protocol.ResultSuccess, "r") }, []string{"c:Result(t1,Success,1)"}},
			{"duplicate result dropped", func(h *harness) { h.result("w", "t1", protocol.ResultSuccess, "r") }, nil},
		}, 1},
		{"result before the heartbeat: task is not missing", []step{
			{"hb seq 1", func(h *harness) { h.handle("w", hb(1)) }, nil},
			{"result", func(h *harness) { h.result("w", "t1", protocol.ResultSuccess, "r") }, []string{"c:Result(t1,Success,1)"}},
			{"hb seq 2 without t1", func(h *harness) { h.handle("w", hb(2)) }, nil},
		}, 0},
		{"task held that the scheduler does not have on the worker is canceled, forced", []step{
			{"hb lists t1 and tx", func(h *harness) { h.handle("w", hb(1, "t1", "tx")) }, []string{"w:TaskCancel(tx,force=true)"}},
			{"confirm of tx dropped", func(h *harness) { h.confirm("w", "tx", protocol.CancelConfirmCanceled) }, nil},
			// t1 is on w: a copy on w2 is not expected to be there.
			{"w2 lists t1 (on w)", func(h *harness) { h.handle("w2", hb(1, "t1")) }, []string{"w2:TaskCancel(t1,force=true)"}},
			{"w lists t1 again", func(h *harness) { h.handle("w", hb(2, "t1")) }, nil},
		}, 0},
		{"re-placed task: the late original result is dropped, exactly one result", []step{
			{"hb seq 1", func(h *harness) { h.handle("w", hb(1)) }, nil},
			{"w2 takes load", func(h *harness) { h.submit("c", "t2") }, []string{"w2:Task(t2)"}},
			// t1 missing; w has 0 tasks, w2 has 1: placed on w again.
			{"hb seq 2 without t1", func(h *harness) { h.handle("w", hb(2)) }, []string{"w:Task(t1)"}},
		}, 1},
		{"a task being canceled that the worker lost is canceled", []step{
			{"hb seq 1", func(h *harness) { h.handle("w", hb(1)) }, nil},
			{"client cancels", func(h *harness) { h.cancel("c", "t1", false) }, []string{"w:TaskCancel(t1,force=false)"}},
			{"hb seq 2 without t1", func(h *harness) { h.handle("w", hb(2)) }, []string{"c:Confirm(t1,Canceled)"}},
		}, 1},
		{"a heartbeat claiming an echo never sent is ignored", []step{
			{"hb seq 9", func(h *harness) { h.handle("w", hb(9, "tx")) }, nil},
		}, 0},
		{"a worker that does not report (seq 0) is never reconciled", []step{
			{"hb seq 0", func(h *harness) { h.handle("w", hb(0, "tx")) }, nil},
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			setup(h)
			if w := h.s.tasks["t1"].worker; w == nil || w.id != "w" {
				t.Fatalf("t1 not on w")
			}
			for _, st := range c.steps {
				st.do(h)
				equal(t, st.name, describe(noEchoes(h.take())), st.want)
				checkInvariants(t, h.s)
			}
			if lost, _ := h.s.Reconciled(); lost != c.lost {
				t.Errorf("lost %d, want %d", lost, c.lost)
			}
		})
	}
}

// TestLateResultOfReplacedTask: a task re-placed on another worker (here
// by reconcile) whose first worker's result arrives late gives the client
// exactly one result, the new worker's.
func TestLateResultOfReplacedTask(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	h.handle("w", hb(0))
	for _, id := range []string{"t1", "t3", "t4"} {
		h.submit("c", id) // all on w, the only worker
	}
	h.handle("w2", &protocol.WorkerHeartbeat{QueueSize: 10})
	h.handle("w", hb(1, "t1", "t3", "t4"))
	h.take()
	// w reports echo 2 without t1: t1 goes to the least loaded worker, w2.
	h.handle("w", hb(2, "t3", "t4"))
	equal(t, "re-placed", describe(noEchoes(h.take())), []string{"w2:Task(t1)"})
	h.result("w", "t1", protocol.ResultSuccess, "old")
	equal(t, "late result of the first worker", describe(h.take()), nil)
	h.result("w2", "t1", protocol.ResultSuccess, "new")
	equal(t, "result of the new worker", describe(h.take()), []string{"c:Result(t1,Success,1)"})
	h.result("w2", "t1", protocol.ResultSuccess, "again")
	equal(t, "nothing more", describe(h.take()), nil)
	checkInvariants(t, h.s)
}

func TestPeerClosed(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	h.worker("w", 10)
	h.worker("w2", 10)
	h.submit("c", "t1") // on w
	h.take()
	h.s.PeerClosed([]byte("w"), h.now)
	equal(t, "worker closed: task re-placed", describe(h.take()), []string{"w2:Task(t1)"})
	if h.s.workers.byID["w"] != nil {
		t.Fatal("worker w still registered")
	}
	h.s.PeerClosed([]byte("c"), h.now)
	equal(t, "client closed: its running task canceled (forced)", describe(withoutHarnessObjects(h.take())), []string{"w2:TaskCancel(t1,force=true)"})
	if h.s.clients["c"] != nil {
		t.Fatal("client c still registered")
	}
	h.s.PeerClosed([]byte("nobody"), h.now.Add(time.Second))
	equal(t, "unknown peer", describe(h.take()), nil)
	if !h.s.PeerUnreachable([]byte("w2"), h.now) || h.s.workers.byID["w2"] != nil {
		t.Fatal("unreachable worker w2 not removed")
	}
	if h.s.PeerUnreachable([]byte("c"), h.now) {
		t.Fatal("a client reported as worker")
	}
	checkInvariants(t, h.s)
}

// TestOnlyAcknowledgingHeartbeatsKeepAWorkerAlive pins the liveness rule of
// onWorkerHeartbeat: a heartbeat counts as a sign of life only when its
// EchoSeq acknowledges an echo newer than the last one acknowledged (and one
// that was sent). A peer repeating heartbeats that ignore the echoes times
// out, and the tasks it was given are placed again.
func TestOnlyAcknowledgingHeartbeatsKeepAWorkerAlive(t *testing.T) {
	cases := []struct {
		name  string
		seq   func(sent uint64) uint64 // EchoSeq of each keep-alive heartbeat, given the last echo sent
		alive bool
	}{
		{"acknowledges every echo", func(sent uint64) uint64 { return sent }, true},
		{"never acknowledges (EchoSeq 0)", func(uint64) uint64 { return 0 }, false},
		{"repeats the first echo", func(uint64) uint64 { return 1 }, false},
		{"claims an echo never sent", func(sent uint64) uint64 { return sent + 5 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.client("c")
			h.handle("w", hb(0))
			h.submit("c", "t1")
			for i := 0; i < 15; i++ { // 15 s, past the 10 s worker timeout
				h.client("c")
				w := h.s.workers.byID["w"]
				if w == nil {
					break
				}
				h.handle("w", hb(c.seq(w.echoSeq), "t1"))
				h.advance(time.Second)
			}
			if alive := h.s.workers.byID["w"] != nil; alive != c.alive {
				t.Fatalf("worker registered after 15 s: %v, want %v", alive, c.alive)
			}
			if t1 := h.s.tasks["t1"]; !c.alive && (t1 == nil || t1.worker != nil) {
				t.Fatalf("t1 of the timed-out worker not waiting for another worker: %+v", t1)
			}
		})
	}
}
