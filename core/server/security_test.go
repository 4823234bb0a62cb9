package server_test

import (
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
)

// TestBogusWorkerRemoved: over real sockets, a peer that registers as a
// worker, takes tasks and never answers them, then sends a client's
// message, is removed at once and its tasks run on the real worker; tasks
// naming objects their client never announced go to no worker (issue 12
// point 1).
func TestBogusWorkerRemoved(t *testing.T) {
	t.Parallel()
	s := scalertest.StartScheduler(t, nil) // worker timeout 60 s: no help from it
	bogus := must[*scalertest.Worker](t)(scalertest.StartWorker(s.Addr(), scalertest.WorkerOptions{Name: "bogus", Hold: true, QueueSize: 100}))
	defer bogus.Kill()
	c := scalertest.ClientFor(t, s.Addr())
	var ids [][]byte
	for i := uint64(0); i < 5; i++ {
		task := c.Task(i)
		ids = append(ids, task.TaskID)
		must[struct{}](t)(struct{}{}, c.Send(task))
	}
	if !scalertest.WaitFor(wait, func() bool { return len(bogus.Tasks()) == 5 }) {
		t.Fatalf("the bogus worker got %d tasks", len(bogus.Tasks()))
	}
	real := scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{Name: "real"})
	must[struct{}](t)(struct{}{}, bogus.Send(&protocol.TaskCancel{TaskID: ids[0]})) // a client's message
	for _, id := range ids {
		m := must[protocol.Message](t)(c.Expect(wait, isResult(id)))
		if r := m.(*protocol.TaskResult); r.Type != protocol.ResultSuccess {
			t.Fatalf("result %+v", r)
		}
	}
	if n := len(real.Tasks()); n != 5 {
		t.Fatalf("the real worker ran %d tasks", n)
	}

	// Naming an object never announced: parked (the announcement may
	// follow), never routed; without a function object: refused at once.
	parked := c.Task(8)
	parked.FuncObjectID = make([]byte, 32)
	must[struct{}](t)(struct{}{}, c.Peer.Send(parked))
	forged := c.Task(9)
	forged.FuncObjectID = nil
	start := time.Now()
	must[struct{}](t)(struct{}{}, c.Peer.Send(forged))
	m := must[protocol.Message](t)(c.Expect(wait, isResult(forged.TaskID)))
	if r := m.(*protocol.TaskResult); r.Type != protocol.ResultRejected {
		t.Fatalf("task without a function object: %+v", r)
	}
	t.Logf("task without a function object rejected in %v", time.Since(start))
	time.Sleep(300 * time.Millisecond)
	if n := len(real.Tasks()); n != 5 {
		t.Fatalf("a refused or parked task reached the worker (%d tasks)", n)
	}
}
