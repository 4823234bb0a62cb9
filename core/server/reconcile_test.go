package server_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
)

// collectResults receives until every one of ids has a result or the
// deadline passes, and then a little longer to catch duplicates. It returns
// the number of results per id.
func collectResults(t *testing.T, c *scalertest.Client, ids [][]byte, within time.Duration) map[string]int {
	t.Helper()
	got := map[string]int{}
	deadline := time.Now().Add(within)
	done := func() bool {
		for _, id := range ids {
			if got[string(id)] == 0 {
				return false
			}
		}
		return true
	}
	grace := time.Time{}
	for {
		now := time.Now()
		if grace.IsZero() && done() {
			grace = now.Add(500 * time.Millisecond)
		}
		if (!grace.IsZero() && now.After(grace)) || now.After(deadline) {
			return got
		}
		m, err := c.Recv(50 * time.Millisecond)
		if err != nil {
			continue
		}
		if r, ok := m.(*protocol.TaskResult); ok {
			if r.Type != protocol.ResultSuccess {
				t.Fatalf("result %+v", r)
			}
			got[string(r.TaskID)]++
		}
	}
}

func sendTasks(t *testing.T, c *scalertest.Client, n uint64) [][]byte {
	t.Helper()
	var ids [][]byte
	for i := uint64(0); i < n; i++ {
		task := c.Task(i)
		if err := c.Send(task); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.TaskID)
	}
	return ids
}

func checkOnce(t *testing.T, ids [][]byte, got map[string]int) {
	t.Helper()
	for _, id := range ids {
		if n := got[string(id)]; n != 1 {
			t.Errorf("task %x: %d results, want exactly 1", id, n)
		}
	}
}

// TestDroppedResultRecoveredByReconciliation: the worker loses the 3rd of
// 10 tasks (no result, and it no longer holds it); the scheduler's
// reconciliation with the worker's heartbeats places it again, and the
// client gets exactly one result for each task, long before any timeout.
func TestDroppedResultRecoveredByReconciliation(t *testing.T) {
	s := scalertest.StartScheduler(t, nil) // worker timeout: the default 60 s
	w := scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{DropResult: 3})
	c := scalertest.ClientFor(t, s.Addr())
	start := time.Now()
	ids := sendTasks(t, c, 10)
	got := collectResults(t, c, ids, 20*time.Second)
	checkOnce(t, ids, got)
	dropped := w.Dropped()
	if len(dropped) != 1 || !bytes.Equal(dropped[0], ids[2]) {
		t.Fatalf("dropped %x, want the 3rd task", dropped)
	}
	sent := 0
	for _, id := range w.Tasks() {
		if bytes.Equal(id, ids[2]) {
			sent++
		}
	}
	if sent != 2 {
		t.Fatalf("the lost task reached the worker %d times, want 2 (placed again once)", sent)
	}
	t.Logf("10 results, the lost one recovered, in %v", time.Since(start))
}

// TestKilledWorkerNoticedAtOnce: a worker whose connection closes is
// removed at once (not after the 60 s worker timeout) and its tasks go to
// the other worker.
func TestKilledWorkerNoticedAtOnce(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	hold := must[*scalertest.Worker](t)(scalertest.StartWorker(s.Addr(), scalertest.WorkerOptions{Name: "hold", Hold: true}))
	defer hold.Kill()
	c := scalertest.ClientFor(t, s.Addr())
	ids := sendTasks(t, c, 5)
	if !scalertest.WaitFor(wait, func() bool { return len(hold.Tasks()) == 5 }) {
		t.Fatalf("holding worker got %d tasks", len(hold.Tasks()))
	}
	scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{Name: "echo"})
	start := time.Now()
	hold.Kill()
	got := collectResults(t, c, ids, 20*time.Second)
	elapsed := time.Since(start)
	checkOnce(t, ids, got)
	// Far below the 60 s timeout even on a loaded machine.
	if elapsed > 15*time.Second {
		t.Fatalf("tasks of the closed worker finished after %v", elapsed)
	}
	t.Logf("closed worker's 5 tasks finished elsewhere %v after the close", elapsed)
}

// TestClosedClientDropped: a client whose connection closes is treated as
// disconnected at once (its running task canceled on the worker), not
// after the client timeout.
func TestClosedClientDropped(t *testing.T) {
	s := scalertest.StartScheduler(t, func(c *config.Scheduler) { c.ClientTimeoutSeconds = 3600 })
	w := scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{Hold: true})
	c := must[*scalertest.Client](t)(scalertest.NewClient(s.Addr()))
	ids := sendTasks(t, c, 1)
	if !scalertest.WaitFor(wait, func() bool { return len(w.Tasks()) == 1 }) {
		t.Fatal("task not on the worker")
	}
	c.Close()
	canceled := func() bool {
		for _, m := range w.Received() {
			if tc, ok := m.(*protocol.TaskCancel); ok && bytes.Equal(tc.TaskID, ids[0]) {
				return true
			}
		}
		return false
	}
	if !scalertest.WaitFor(wait, canceled) {
		t.Fatal("the closed client's task was not canceled")
	}
}
