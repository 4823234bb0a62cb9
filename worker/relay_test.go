package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/wait"
)

// A cluster with --relay: its worker processes reach the scheduler through
// the cluster's relay (one connection), run tasks with real processors,
// and a worker killed while it holds a task is reported closed at once, so
// the task runs elsewhere long before the scheduler's worker timeout.
func TestRelayedClusterRunsTasksAndReportsADeadWorker(t *testing.T) {
	s, c, h := startSchedulerAndClient(t, func(cfg *config.Scheduler) { cfg.WorkerTimeoutSeconds = 120 })
	cl := startCluster(t, "-n", "2", "--relay", s.Addr())
	add := h.fn(srcAdd, "add")
	for i := 0; i < 10; i++ {
		task := h.task(add, 0, h.arg(fmt.Sprint(i)), h.arg("1"))
		_ = c.Send(task)
		if r := awaitResult(t, c, task.TaskID, 30*time.Second); r.Type != protocol.ResultSuccess || h.result(r.Results[0]) != fmt.Sprint(i+1) {
			t.Fatalf("task %d: %+v", i, r)
		}
	}
	out := cl.out.String()
	if !strings.Contains(out, "relay: the workers here reach the scheduler over one connection") || !strings.Contains(out, "scheduler=ipc://") {
		t.Fatalf("the workers do not go through the relay:\n%s", out)
	}

	// Two tasks that hold their processors; the agent of one is killed.
	dir := t.TempDir()
	hold := h.fn("import os, time\ndef hold(path, n):\n    open(path + '.tmp', 'w').write(str(os.getppid()))\n    os.rename(path + '.tmp', path)\n    time.sleep(n)\n    return n\n", "hold")
	var ids [][]byte
	for i := 0; i < 2; i++ {
		task := h.task(hold, 0, h.arg(fmt.Sprintf("%q", filepath.Join(dir, fmt.Sprint(i)))), h.arg("3"))
		ids = append(ids, task.TaskID)
		_ = c.Send(task)
	}
	var agent int
	wait.Until(t, 30*time.Second, "the first task to start", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "0"))
		if err != nil {
			return false
		}
		_, err = fmtSscan(string(b), &agent)
		return err == nil
	})
	if err := syscall.Kill(agent, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Within 30 s, against the scheduler's worker timeout of 120 s: only
	// the relay's report of the closed link can have freed the task.
	for _, id := range ids {
		if r := awaitResult(t, c, id, 30*time.Second); r.Type != protocol.ResultSuccess {
			t.Fatalf("held task: %+v", r)
		}
	}
	cl.terminate(t, 20*time.Second)
}
