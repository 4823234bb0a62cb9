package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/programs"
)

// inprocScheduler is a fake scheduler at an inproc:// address of this
// process, as the combo's scheduler is for its in-process workers.
func inprocScheduler(t *testing.T, storageAddr string) *fakeScheduler {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return newFakeSchedulerAt(t, storageAddr, "inproc://test-inprocess-"+hex.EncodeToString(b[:]), "")
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
