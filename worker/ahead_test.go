package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// Tasks sent ahead (docs/protocol.md §7.5): once a processor's tasks are
// quick, the agent sends it the next task while the current one runs.

const srcFlagged = "import time\ndef flagged(path, s):\n    open(path, 'w').close()\n    time.sleep(s)\n    return s\n"

// makeQuick runs a few instant tasks so that the processor counts as quick.
func makeQuick(t *testing.T, e *workerEnv) {
	t.Helper()
	fn := e.h.fn("def nothing():\n    return 0\n", "nothing")
	for i := 0; i < 5; i++ {
		task := e.h.task(fn, 0)
		e.sched.send(task)
		if res := e.sched.result(task.TaskID, 30*time.Second); res.Type != protocol.ResultSuccess {
			t.Fatalf("warm-up task: %+v", res)
		}
	}
}

// collect reads messages until every wanted task has a TaskResult or a
// TaskCancelConfirm, and returns them in arrival order.
func collect(t *testing.T, e *workerEnv, ids ...[]byte) []protocol.Message {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[string(id)] = true
	}
	var got []protocol.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(want) > 0 {
		m := e.sched.next(time.Until(deadline))
		switch m := m.(type) {
		case *protocol.TaskResult:
			delete(want, string(m.TaskID))
			got = append(got, m)
		case *protocol.TaskCancelConfirm:
			delete(want, string(m.TaskID))
			got = append(got, m)
		}
	}
	return got
}

// runFirstSendAhead starts a task that runs for the given seconds (a Python
// literal) and queues a second one behind it, which the agent sends ahead
// to the same processor; it returns once the first is running. Each task
// creates its file in dir when it starts.
func runFirstSendAhead(t *testing.T, e *workerEnv, seconds string) (dir string, first, ahead *protocol.Task) {
	t.Helper()
	makeQuick(t, e)
	flagged := e.h.fn(srcFlagged, "flagged")
	dir = t.TempDir()
	first = e.h.task(flagged, 0, e.h.arg(pyStr(filepath.Join(dir, "first"))), e.h.arg(seconds))
	ahead = e.h.task(flagged, 0, e.h.arg(pyStr(filepath.Join(dir, "ahead"))), e.h.arg("0"))
	e.sched.send(first)
	e.sched.send(ahead)
	waitForFile(t, filepath.Join(dir, "first"), 30*time.Second)
	return dir, first, ahead
}

func TestCancelOfTaskSentAhead(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(map[bool]string{false: "not forced", true: "forced"}[force], func(t *testing.T) {
			e := startWorker(t, nil)
			dir, first, ahead := runFirstSendAhead(t, e, "1")
			e.sched.send(&protocol.TaskCancel{TaskID: ahead.TaskID, Force: force})

			got := collect(t, e, first.TaskID, ahead.TaskID)
			// Sent ahead, the task can only be withdrawn once the processor is
			// between tasks: the answer follows the running task's result (a
			// queued task's cancel would be answered at once).
			res, ok := got[0].(*protocol.TaskResult)
			if !ok || string(res.TaskID) != string(first.TaskID) || res.Type != protocol.ResultSuccess {
				t.Fatalf("first answer %+v, want the running task's success", got[0])
			}
			c, ok := got[1].(*protocol.TaskCancelConfirm)
			if !ok || c.Type != protocol.CancelConfirmCanceled {
				t.Fatalf("second answer %+v, want the withdrawn task cancelled", got[1])
			}
			if _, err := os.Stat(filepath.Join(dir, "ahead")); err == nil {
				t.Fatal("the withdrawn task ran")
			}
			// The processor goes on serving.
			makeQuick(t, e)
		})
	}
}

func TestTaskSentAheadSurvivesItsProcessor(t *testing.T) {
	for _, how := range []string{"force cancel", "timeout"} {
		t.Run(how, func(t *testing.T) {
			e := startWorker(t, func(c *Config) {
				if how == "timeout" {
					c.TaskTimeout = 2 * time.Second
				}
			})
			dir, first, ahead := runFirstSendAhead(t, e, "60")
			if how == "force cancel" {
				e.sched.send(&protocol.TaskCancel{TaskID: first.TaskID, Force: true})
			}
			got := collect(t, e, first.TaskID, ahead.TaskID)
			switch m := got[0].(type) {
			case *protocol.TaskCancelConfirm:
				if how != "force cancel" || m.Type != protocol.CancelConfirmCanceled {
					t.Fatalf("first answer %+v", m)
				}
			case *protocol.TaskResult:
				if how != "timeout" || m.Type != protocol.ResultFailedTimeout {
					t.Fatalf("first answer %+v", m)
				}
			}
			// The task sent ahead never started in the killed processor; it
			// runs once, in the next one.
			if res, ok := got[1].(*protocol.TaskResult); !ok || res.Type != protocol.ResultSuccess {
				t.Fatalf("task sent ahead: %+v, want success", got[1])
			}
			if _, err := os.Stat(filepath.Join(dir, "ahead")); err != nil {
				t.Fatalf("the task sent ahead did not run: %v", err)
			}
		})
	}
}

func TestAheadLimit(t *testing.T) {
	for _, tc := range []struct {
		lastRun time.Duration
		want    int
	}{
		{0, 1},                      // nothing known yet: one, as before any measure
		{20 * time.Microsecond, 16}, // trivial tasks: maxAhead
		{500 * time.Microsecond, 4}, // about aheadBelow of work waits
		{1500 * time.Microsecond, 1},
		{5 * time.Millisecond, 1}, // not quick: fillAhead sends none anyway
	} {
		if got := aheadLimit(&processor{lastRun: tc.lastRun}); got != tc.want {
			t.Errorf("last task %s: limit %d, want %d", tc.lastRun, got, tc.want)
		}
	}
}

// Behind a running task, a quick processor is sent several tasks at once;
// a cancel of one deep among them withdraws it when the processor gets to
// it (after the results of the tasks before it), and the rest run, in order.
// A forced cancel of the running task kills its processor: every task sent
// ahead goes back to the queue and runs in the next processor.
func TestSeveralTasksSentAhead(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(map[bool]string{false: "cancel one sent ahead", true: "force cancel the running one"}[force], func(t *testing.T) {
			e := startWorker(t, nil)
			dir, first, ahead := runFirstSendAhead(t, e, "1")
			flagged := e.h.fn(srcFlagged, "flagged")
			more := []*protocol.Task{ahead}
			for i := 0; i < 4; i++ {
				task := e.h.task(flagged, 0, e.h.arg(pyStr(filepath.Join(dir, "more"+string(rune('a'+i))))), e.h.arg("0"))
				more = append(more, task)
				e.sched.send(task)
			}
			withdrawn := more[2]
			if force {
				e.sched.send(&protocol.TaskCancel{TaskID: first.TaskID, Force: true})
			} else {
				time.Sleep(100 * time.Millisecond) // the four reach the agent, which sends them ahead
				e.sched.send(&protocol.TaskCancel{TaskID: withdrawn.TaskID})
			}
			ids := [][]byte{first.TaskID}
			for _, task := range more {
				ids = append(ids, task.TaskID)
			}
			got := collect(t, e, ids...)
			var order []string
			for _, m := range got {
				switch m := m.(type) {
				case *protocol.TaskResult:
					if m.Type != protocol.ResultSuccess {
						t.Fatalf("result %+v", m)
					}
					order = append(order, "result:"+string(m.TaskID))
				case *protocol.TaskCancelConfirm:
					if m.Type != protocol.CancelConfirmCanceled {
						t.Fatalf("cancel answer %+v", m)
					}
					order = append(order, "canceled:"+string(m.TaskID))
				}
			}
			var want []string
			if force {
				want = append(want, "canceled:"+string(first.TaskID))
				for _, task := range more {
					want = append(want, "result:"+string(task.TaskID))
				}
			} else {
				want = append(want, "result:"+string(first.TaskID))
				for _, task := range more {
					if task == withdrawn {
						want = append(want, "canceled:"+string(task.TaskID))
					} else {
						want = append(want, "result:"+string(task.TaskID))
					}
				}
				if _, err := os.Stat(filepath.Join(dir, "moreb")); err == nil {
					t.Fatal("the withdrawn task ran")
				}
			}
			if len(order) != len(want) {
				t.Fatalf("%d answers, want %d", len(order), len(want))
			}
			for i := range want {
				if order[i] != want[i] {
					t.Fatalf("answer %d is %q, want %q (a task queued in the agent, not sent ahead, would be answered at once)",
						i, order[i], want[i])
				}
			}
			makeQuick(t, e) // the processor goes on serving
		})
	}
}
