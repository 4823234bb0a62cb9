package feed

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/core/server"
	"github.com/opengris/scaler/internal/scalertest"
	"github.com/opengris/scaler/transport"
)

// runBatch submits n tasks (ids from first on) and waits for their results.
func runBatch(t *testing.T, c *scalertest.Client, first, n uint64) {
	t.Helper()
	for i := first; i < first+n; i++ {
		if err := c.Peer.Send(c.Task(i)); err != nil {
			t.Fatal(err)
		}
	}
	for got := uint64(0); got < n; {
		m, err := c.Recv(30 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d results: %v", got, n, err)
		}
		if r, ok := m.(*protocol.TaskResult); ok {
			if r.Type != protocol.ResultSuccess {
				t.Fatalf("result %+v", r)
			}
			got++
		}
	}
}

// A real scheduler with two workers, a subscriber that never reads and a
// Monitor: the stalled subscriber costs dropped messages (counted in the
// status, which the Monitor shows), the Monitor keeps receiving, its task
// log names function and worker, and its finished total is exact.
func TestMonitorAgainstScheduler(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	stalled, err := transport.Open(transport.Sub, s.MonitorAddr(), false, transport.Options{RecvHWM: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	m := start(t, s.MonitorAddr(), 5*time.Second)
	for i := 0; i < 2; i++ {
		scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{QueueSize: 1000})
	}
	c, err := scalertest.NewClient(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The function object with a name, as the Python client announces it.
	if err := c.Peer.Send(&protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: c.ID,
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{scalertest.FuncObjectID}, Names: [][]byte{[]byte("echo")}}}); err != nil {
		t.Fatal(err)
	}
	until(t, m, nil, func(s State) bool { return s.Status != nil && len(s.Status.Workers) == 2 })

	// Batches until the scheduler reports drops: how many messages the
	// stalled subscriber's socket buffers absorb depends on the kernel.
	const batch = 5000
	var n uint64
	deadline := time.Now().Add(120 * time.Second)
	for n < 400_000 && time.Now().Before(deadline) {
		runBatch(t, c, n, batch)
		n += batch
		if m.State().Overflows > 0 {
			break
		}
		select {
		case <-m.Changed(): // let a status through
		case <-time.After(1500 * time.Millisecond):
		}
		if m.State().Overflows > 0 {
			break
		}
	}
	sawDrops := m.State().Overflows
	t.Logf("%d tasks; scheduler dropped %d monitor messages (lower bound); this monitor missed %d", n, sawDrops, m.State().Missed)
	if sawDrops == 0 {
		t.Fatalf("no drops reported after %d tasks", n)
	}
	// The Monitor is served although another subscriber is stalled: its
	// total becomes exact (from the status counts), with fresh statuses.
	// Nothing is left running (lost finish events are corrected by the
	// status's per-worker counts).
	st := until(t, m, nil, func(s State) bool {
		return s.Totals.Finished[protocol.TaskStateSuccess] == n && len(s.Running) == 0
	})
	if st.Stale || time.Since(st.Updated) > 5*time.Second {
		t.Fatalf("stale feed: %+v", st.Updated)
	}
	if len(st.Tasks) != MaxTasks {
		t.Fatalf("task log has %d entries", len(st.Tasks))
	}
	for _, x := range st.Tasks[:10] {
		if x.Function != "echo" || x.Worker == "" || x.State != protocol.TaskStateSuccess || x.End.IsZero() {
			t.Fatalf("task log entry %+v", x)
		}
	}
	var perSec uint64
	for _, sec := range st.Finished {
		perSec += sec.Success
	}
	if perSec != n {
		t.Fatalf("per-second counts sum to %d, want %d", perSec, n)
	}
}

// The scheduler stops and another one starts on the same monitor address:
// the Monitor turns Stale keeping the last Updated time, then picks the new
// one up by itself, counts the restart and forgets the old tasks.
func TestMonitorSurvivesSchedulerRestart(t *testing.T) {
	s1 := scalertest.StartScheduler(t, nil)
	addr := s1.MonitorAddr()
	m := start(t, addr, 1500*time.Millisecond)
	scalertest.WorkerFor(t, s1.Addr(), scalertest.WorkerOptions{Hold: true})
	c, err := scalertest.NewClient(s1.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	until(t, m, nil, func(s State) bool { return s.Status != nil && len(s.Status.Workers) == 1 })
	// A task held by the worker shows as running.
	if err := c.Send(c.Task(1)); err != nil {
		t.Fatal(err)
	}
	until(t, m, nil, func(s State) bool { return len(s.Running) == 1 })

	s1.Stop()
	<-s1.Done()
	down := until(t, m, nil, func(s State) bool { return s.Stale })
	if down.Updated.IsZero() || down.Status == nil || down.Restarts != 0 || len(down.Running) != 1 {
		t.Fatalf("while down: updated %v status %v restarts %d running %d", down.Updated, down.Status != nil, down.Restarts, len(down.Running))
	}
	if time.Since(down.Updated) < 1500*time.Millisecond {
		t.Fatalf("stale %v after the last update", time.Since(down.Updated))
	}
	// zmq may keep the port a moment after close: retry the bind.
	if !scalertest.WaitFor(20*time.Second, func() bool {
		if tryScheduler(t, addr) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
		return false
	}) {
		t.Fatal("could not start a scheduler on the same monitor address")
	}
	back := until(t, m, nil, func(s State) bool { return !s.Stale && s.Status != nil && s.Updated.After(down.Updated) })
	if back.Restarts != 1 || len(back.Running) != 0 || len(back.Status.Workers) != 0 {
		t.Fatalf("after the restart: restarts %d running %d workers %d", back.Restarts, len(back.Running), len(back.Status.Workers))
	}
	if string(back.Status.InstanceID) == string(down.Status.InstanceID) {
		t.Fatal("same instance id after a restart")
	}
}

// tryScheduler starts a scheduler whose monitor binds addr, stopped when
// the test ends; false if it cannot bind (yet).
func tryScheduler(t *testing.T, addr string) bool {
	cfg := config.DefaultScheduler()
	cfg.SchedulerAddress = "tcp://127.0.0.1:0"
	cfg.MonitorAddress = addr
	srv, err := server.New(cfg, zerolog.Nop())
	if err != nil {
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = srv.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("second scheduler did not stop")
		}
	})
	return true
}
