package server_test

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
	"github.com/opengris/scaler/transport"
)

// statusLog collects the StateScheduler messages of a monitor socket.
type statusLog struct {
	mu  sync.Mutex
	all []*protocol.StateScheduler
}

func watchStatus(t *testing.T, addr string) *statusLog {
	sub, err := transport.Connect(transport.Sub, addr, transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &statusLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for frames := range sub.Recv() {
			m, err := protocol.Decode(frames[0])
			if st, ok := m.(*protocol.StateScheduler); err == nil && ok {
				l.mu.Lock()
				l.all = append(l.all, st)
				l.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { sub.Close(); <-done })
	return l
}

func (l *statusLog) any(f func(*protocol.StateScheduler) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, st := range l.all {
		if f(st) {
			return true
		}
	}
	return false
}

// TestScalingWebhook: a task with no worker makes the scheduler POST
// start_worker_group to the adapter; the started worker runs the task; the
// group shows in StateScheduler; once idle the group is shut down. A slow
// adapter never stalls the scheduler.
func TestScalingWebhook(t *testing.T) {
	t.Parallel()
	adapter := scalertest.NewAdapter(t, scalertest.WorkerOptions{Hold: true, QueueSize: 10})
	stall := make(chan struct{})
	var once sync.Once
	adapter.Hook = func(action string) {
		if action == "start_worker_group" {
			once.Do(func() { <-stall })
		}
	}
	s := scalertest.StartScheduler(t, func(c *config.Scheduler) {
		c.AdapterWebhookURL = adapter.URL
		c.AdapterIdleSeconds = 1 // the least: the idle group goes a second after its task
	})
	adapter.SetScheduler(s.Addr())
	status := watchStatus(t, s.MonitorAddr())
	c := scalertest.ClientFor(t, s.Addr())
	task := c.Task(1)
	must[struct{}](t)(struct{}{}, c.Send(task))

	if !scalertest.WaitFor(wait, func() bool { return len(adapter.Requests()) == 1 }) {
		t.Fatal("no start_worker_group request")
	}
	// The adapter is stalled; the scheduler keeps answering.
	began := time.Now()
	must[struct{}](t)(struct{}{}, c.Send(&protocol.ClientHeartbeat{}))
	must[protocol.Message](t)(c.Expect(wait, func(m protocol.Message) bool { return m.Kind() == protocol.KindClientHeartbeatEcho }))
	if d := time.Since(began); d > time.Second {
		t.Fatalf("heartbeat echo took %v while the webhook call was pending", d)
	}
	close(stall)

	r := adapter.Requests()[0]
	if r.Method != "POST" || r.ContentType != "application/json" || r.Body != `{"action":"start_worker_group"}` {
		t.Fatalf("start request %+v", r)
	}
	var w *scalertest.Worker
	if !scalertest.WaitFor(wait, func() bool { w = adapter.Group("native-1"); return w != nil && len(w.Tasks()) == 1 }) {
		t.Fatal("the started worker never got the task")
	}
	if !scalertest.WaitFor(wait, func() bool {
		return status.any(func(st *protocol.StateScheduler) bool {
			return len(st.WorkerGroups) == 1 && string(st.WorkerGroups[0].GroupID) == "native-1" &&
				len(st.WorkerGroups[0].WorkerIDs) == 1 && bytes.Equal(st.WorkerGroups[0].WorkerIDs[0], w.ID)
		})
	}) {
		t.Fatal("StateScheduler never listed the worker group")
	}
	time.Sleep(1200 * time.Millisecond)
	if n := len(adapter.Requests()); n != 1 {
		t.Fatalf("%d webhook calls while the group's worker was busy: %+v", n, adapter.Requests())
	}

	// The task ends; the idle group is shut down.
	must[struct{}](t)(struct{}{}, c.Send(&protocol.TaskCancel{TaskID: task.TaskID, Force: true}))
	must[protocol.Message](t)(c.Expect(wait, func(m protocol.Message) bool { return m.Kind() == protocol.KindTaskCancelConfirm }))
	if !scalertest.WaitFor(wait, func() bool { return len(adapter.Requests()) == 2 }) {
		t.Fatal("no shutdown_worker_group request")
	}
	r = adapter.Requests()[1]
	if r.Method != "POST" || r.Body != `{"action":"shutdown_worker_group","worker_group_id":"native-1"}` {
		t.Fatalf("shutdown request %+v", r)
	}
	if !scalertest.WaitFor(wait, func() bool {
		return status.any(func(st *protocol.StateScheduler) bool { return len(st.WorkerGroups) == 0 && len(st.Workers) == 0 })
	}) {
		t.Fatal("group and worker still reported")
	}
	time.Sleep(1200 * time.Millisecond)
	if n := len(adapter.Requests()); n != 2 {
		t.Fatalf("unexpected further webhook calls: %+v", adapter.Requests()[2:])
	}
}

// TestScalingWebhookUnreachable: a dead adapter is logged, never fatal. The
// "adapter" accepts connections and closes them at once, so the test sees
// that the scheduler does try the webhook.
func TestScalingWebhookUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			attempts.Add(1)
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); <-accepting })
	s := scalertest.StartScheduler(t, func(c *config.Scheduler) { c.AdapterWebhookURL = "http://" + l.Addr().String() + "/" })
	c := scalertest.ClientFor(t, s.Addr())
	task := c.Task(1)
	must[struct{}](t)(struct{}{}, c.Send(task))
	if !scalertest.WaitFor(wait, func() bool { return attempts.Load() > 0 }) {
		t.Fatal("the scheduler never called the adapter webhook")
	}
	// The failed call did not stop it: it still answers and, once a
	// worker comes, runs the task.
	must[struct{}](t)(struct{}{}, c.Send(&protocol.ClientHeartbeat{}))
	must[protocol.Message](t)(c.Expect(wait, func(m protocol.Message) bool { return m.Kind() == protocol.KindClientHeartbeatEcho }))
	scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{})
	must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
	select {
	case <-s.Done():
		t.Fatalf("scheduler stopped: %v", s.Err())
	default:
	}
}
