package worker

import (
	"context"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/identity"
	"github.com/opengris/scaler/internal/scalertest/programs"
)

// inprocScheduler is a fake scheduler at an inproc:// address of this
// process, as the combo's scheduler is for its in-process workers.
func inprocScheduler(t *testing.T, storageAddr string) *fakeScheduler {
	return newFakeSchedulerAt(t, storageAddr, "inproc://test-inprocess-"+identity.RandomHex(8), "")
}

func inprocConfig(name, sched, python string) Config {
	return Config{Name: name, SchedulerAddress: sched, HeartbeatInterval: time.Second,
		DeathTimeout: 60 * time.Second, Python: python, KillDelay: time.Second, LoggingLevel: "WARNING"}
}

// waitWorkers waits until the fake scheduler has heard from n distinct
// worker identities.
func waitWorkers(t *testing.T, s *fakeScheduler, n int, d time.Duration) map[string]bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		seen := s.workers()
		if len(seen) >= n {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("heard from %d workers within %s, want %d", len(seen), d, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func awaitRun(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("RunInProcess did not return within %s", d)
		return nil
	}
}

// An in-process worker runs tasks over inproc://; when its object storage
// is lost it fails (StopFailed) and is started again with a new id, as a
// worker process of a cluster is; cancelling the context ends it and the
// pending restart.
func TestRunInProcessRunsTasksAndRestarts(t *testing.T) {
	python := programs.Python(t)
	st, stopStorage := startStoppableStorage(t)
	sched := inprocScheduler(t, st)
	h := newHelper(t, python, st)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- RunInProcess(ctx, []Config{inprocConfig("inproc", sched.ep.Addr(), python)}, testLog(t, "cluster"))
	}()

	first := waitWorkers(t, sched, 1, 30*time.Second)
	task := h.task(h.fn(srcAdd, "add"), 0, h.arg("2"), h.arg("3"))
	sched.send(task)
	res := sched.result(task.TaskID, 30*time.Second)
	if res.Type != protocol.ResultSuccess || h.result(res.Results[0]) != "5" {
		t.Fatalf("result %+v", res)
	}

	stopStorage()
	seen := waitWorkers(t, sched, 2, 30*time.Second)
	for id := range first {
		if !seen[id] {
			t.Fatalf("lost track of the first worker %q", id)
		}
	}
	cancel()
	if err := awaitRun(t, done, 20*time.Second); err != nil {
		t.Fatalf("RunInProcess: %v", err)
	}
}

// When the scheduler tells its workers to shut down, RunInProcess ends
// without restarting any of them.
func TestRunInProcessEndsOnShutdown(t *testing.T) {
	python := programs.Python(t)
	st := startStorage(t)
	sched := inprocScheduler(t, st)
	done := make(chan error, 1)
	workers := []Config{inprocConfig("a", sched.ep.Addr(), python), inprocConfig("b", sched.ep.Addr(), python)}
	go func() { done <- RunInProcess(context.Background(), workers, testLog(t, "cluster")) }()
	seen := waitWorkers(t, sched, 2, 30*time.Second)
	shutdown := protocol.MustEncode(&protocol.ClientDisconnect{Type: protocol.DisconnectShutdown})
	for id := range seen {
		if err := sched.ep.Send([]byte(id), shutdown); err != nil {
			t.Fatal(err)
		}
	}
	if err := awaitRun(t, done, 20*time.Second); err != nil {
		t.Fatalf("RunInProcess: %v", err)
	}
	if after := sched.workers(); len(after) != 2 {
		t.Fatalf("heard from %d workers, want the 2 that shut down (none restarted)", len(after))
	}
}

// An in-process agent shares its process with the combo's scheduler and
// the other agents: its heartbeat reports its own loop thread's CPU, and
// no memory of its own, not the whole process's figures (which the
// monitors showed for every one of the combo's workers).
func TestInProcessAgentReportsItsOwnShare(t *testing.T) {
	python := programs.Python(t)
	st := startStorage(t)
	sched := inprocScheduler(t, st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunInProcess(ctx, []Config{inprocConfig("share", sched.ep.Addr(), python)}, testLog(t, "cluster"))
	}()
	defer func() {
		cancel()
		_ = awaitRun(t, done, 20*time.Second)
	}()
	// The rest of the process keeps a core busy, as a loaded scheduler
	// would, until the test ends.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < 1_000_000; i++ {
				_ = i * i
			}
		}
	}()
	// The first heartbeat's CPU counts from the agent's start; judge a later one.
	seen := 0
	hb := waitForHeartbeat(t, sched, 30*time.Second, "a third heartbeat", func(*protocol.WorkerHeartbeat) bool {
		seen++
		return seen >= 3
	})
	if hb.Agent.RSS != 0 {
		t.Errorf("agent RSS %d, want 0: the process's memory is not this agent's", hb.Agent.RSS)
	}
	if hb.Agent.CPU > 300 {
		t.Errorf("agent CPU %d‰ while another goroutine of its process keeps a core busy: that is the process's, not the agent's", hb.Agent.CPU)
	}
}
