package worker

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
	"github.com/opengris/scaler/internal/scalertest/wait"
	"github.com/opengris/scaler/transport"
)

// A relayed worker that stops reading (its queue and then its backlog at
// the relay full) is reported closed, so its tasks run elsewhere at once
// instead of waiting for the scheduler's worker timeout (60 s here).
func TestRelayReportsAWorkerThatStopsReading(t *testing.T) {
	old := workerBacklogBytes
	workerBacklogBytes = 64 << 10
	t.Cleanup(func() { workerBacklogBytes = old })
	s := scalertest.StartScheduler(t, nil)
	local := "ipc://" + filepath.Join(t.TempDir(), "relay.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	up := make(chan struct{})
	go func() { done <- RunRelay(ctx, local, s.Addr(), func() { close(up) }, testLog(t, "relay")) }()
	t.Cleanup(func() { cancel(); <-done })
	<-up

	// The stuck worker: a DEALER whose zmq stops reading its connection
	// after one message (receive mark 1), as a stopped process's would.
	stuck, err := transport.Open(transport.Dealer, local, false,
		transport.Options{Identity: []byte(NewWorkerID("stuck")), RecvHWM: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stuck.Close() })
	if err := stuck.Send(protocol.MustEncode(&protocol.WorkerHeartbeat{QueueSize: 20000, Tasks: [][]byte{}})); err != nil {
		t.Fatal(err)
	}
	// It registers (reads its echo), is then given every task, and reads
	// nothing more.
	wait.Until(t, 10*time.Second, "the stuck worker's echo", func() bool {
		frames, err := stuck.TryRecv()
		return err == nil && len(frames) == 1 && protocol.Kind(frames[0][0]) == protocol.KindWorkerHeartbeatEcho
	})
	c := scalertest.ClientFor(t, s.Addr())
	// Tasks of 64 KiB, one a scheduler round, each its own message to the
	// worker: its zmq queue (workerHWM), the socket's buffers and then the
	// backlog bound fill up.
	const n = 200
	arg := []protocol.Argument{{Type: protocol.ArgumentInline, Data: make([]byte, 64<<10)}}
	for i := 0; i < n; i++ {
		task := c.Task(uint64(i + 1))
		task.Arguments = arg
		if err := c.Send(task); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{Name: "reader", QueueSize: 1000})
	got := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n {
		m, err := c.Recv(time.Until(deadline))
		if err != nil {
			t.Fatalf("%d of %d results within 30 s: %v", len(got), n, err)
		}
		if r, ok := m.(*protocol.TaskResult); ok {
			got[string(r.TaskID)] = true
		}
	}
}
