package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/procs"
)

// Scheduler restarts (schedwatch.go): a new instance id drops the old
// instance's work; a lost connection holds queued tasks until the
// scheduler answers again.

// srcFlaggedDone is srcFlagged that also writes path+".done" when it ends.
const srcFlaggedDone = "import time\ndef flagged(path, s):\n    open(path, 'w').close()\n    time.sleep(s)\n    open(path + '.done', 'w').close()\n    return s\n"

// srcMark appends a line to path: a side effect that shows the task ran.
const srcMark = "def mark(path):\n    with open(path, 'a') as f:\n        f.write('x\\n')\n    return 1\n"

// taskPIDs returns the processors that hold a task, running or suspended.
func taskPIDs(hb *protocol.WorkerHeartbeat) (running, suspended []int) {
	for _, p := range hb.Processors {
		switch {
		case p.HasTask && p.Suspended:
			suspended = append(suspended, int(p.PID))
		case p.HasTask:
			running = append(running, int(p.PID))
		}
	}
	return running, suspended
}

func TestSchedulerRestartDropsOldWork(t *testing.T) {
	e := startWorker(t, nil)
	e.sched.setInstance("instance-A")
	e.sched.echoed(20 * time.Second)
	dir := t.TempDir()
	low, high, marks := filepath.Join(dir, "low"), filepath.Join(dir, "high"), filepath.Join(dir, "marks")
	flagged := e.h.fn(srcFlaggedDone, "flagged")
	// A running task suspended by one of higher priority, which runs; five queued behind them.
	e.sched.send(e.h.task(flagged, 0, e.h.arg(pyStr(low)), e.h.arg("60")))
	waitForFile(t, low, 30*time.Second)
	e.sched.send(e.h.task(flagged, 1, e.h.arg(pyStr(high)), e.h.arg("60")))
	waitForFile(t, high, 30*time.Second)
	mark := e.h.fn(srcMark, "mark")
	for i := 0; i < 5; i++ {
		e.sched.send(e.h.task(mark, 0, e.h.arg(pyStr(marks))))
	}
	hb := waitForHeartbeat(t, e.sched, 20*time.Second, "one task running, one suspended, five queued", func(hb *protocol.WorkerHeartbeat) bool {
		r, s := taskPIDs(hb)
		return hb.QueuedTasks == 5 && len(r) == 1 && len(s) == 1
	})
	running, suspended := taskPIDs(hb)

	e.sched.setInstance("instance-B") // the scheduler restarted
	e.sched.echoed(20 * time.Second)
	waitForHeartbeat(t, e.sched, 20*time.Second, "nothing held after the restart", func(hb *protocol.WorkerHeartbeat) bool {
		r, s := taskPIDs(hb)
		return hb.QueuedTasks == 0 && len(r)+len(s) == 0 && len(hb.Tasks) == 0
	})
	for _, pid := range append(running, suspended...) {
		deadline := time.Now().Add(10 * time.Second)
		for procs.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if procs.Alive(pid) {
			t.Fatalf("processor %d of the old instance's running or suspended task still runs", pid)
		}
	}
	// New work runs at once; result() fails on a result of any old task.
	task := e.h.task(e.h.fn(srcAdd, "add"), 0, e.h.arg("1"), e.h.arg("2"))
	e.sched.send(task)
	if res := e.sched.result(task.TaskID, 30*time.Second); res.Type != protocol.ResultSuccess {
		t.Fatalf("new instance's task: %+v", res)
	}
	if _, err := os.Stat(marks); err == nil {
		t.Fatal("a queued task of the old instance ran")
	}
	select {
	case m := <-e.sched.msgs:
		t.Fatalf("unexpected %T after the restart", m)
	case <-time.After(500 * time.Millisecond):
	}
}

// A scheduler that is gone (its connection closed) and comes back with the
// same instance id: nothing is dropped, and nothing starts while it is gone.
func TestSchedulerConnectionLossHoldsTasks(t *testing.T) {
	e := startWorker(t, nil)
	e.sched.setInstance("instance-A")
	e.sched.echoed(20 * time.Second)
	dir := t.TempDir()
	running, marks := filepath.Join(dir, "running"), filepath.Join(dir, "marks")
	long := e.h.task(e.h.fn(srcFlaggedDone, "flagged"), 0, e.h.arg(pyStr(running)), e.h.arg("4"))
	e.sched.send(long)
	waitForFile(t, running, 30*time.Second)
	mark := e.h.fn(srcMark, "mark")
	var queued [][]byte
	for i := 0; i < 3; i++ {
		q := e.h.task(mark, 0, e.h.arg(pyStr(marks)))
		queued = append(queued, q.TaskID)
		e.sched.send(q)
	}
	waitForHeartbeat(t, e.sched, 20*time.Second, "three queued", func(hb *protocol.WorkerHeartbeat) bool { return hb.QueuedTasks == 3 })

	addr := e.sched.ep.Addr()
	_ = e.sched.ep.Close() // the scheduler is gone
	waitForFile(t, running+".done", 30*time.Second)
	// The worker is free now, but must not start the queued tasks while no
	// scheduler answers. (Without the hold they run within milliseconds.)
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(marks); err == nil {
		t.Fatal("a queued task started while the scheduler was gone")
	}

	back := newFakeSchedulerAt(t, e.storage, addr, "instance-A")
	want := map[string]bool{}
	for _, id := range queued {
		want[string(id)] = true
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(want) > 0 {
		switch m := back.next(time.Until(deadline)).(type) {
		case *protocol.TaskResult:
			if m.Type != protocol.ResultSuccess {
				t.Fatalf("result %+v", m)
			}
			delete(want, string(m.TaskID)) // the long task's result may come too
		}
	}
}
