package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/core/server"
	"github.com/opengris/scaler/internal/scalertest"
	"github.com/opengris/scaler/storage"
	"github.com/opengris/scaler/transport"
)

const wait = 10 * time.Second

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func isResult(id []byte) func(protocol.Message) bool {
	return func(m protocol.Message) bool {
		r, ok := m.(*protocol.TaskResult)
		return ok && bytes.Equal(r.TaskID, id)
	}
}

func TestSubmitResult(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{})
	c := scalertest.ClientFor(t, s.Addr())
	if c.Storage.Port == 0 {
		t.Fatal("echo without object storage address")
	}
	// The announced storage is reachable.
	sc := must[*storage.Client](t)(storage.Dial("tcp://127.0.0.1:" + itoa(int(c.Storage.Port))))
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := sc.Stats(ctx); err != nil {
		t.Fatalf("object storage: %v", err)
	}
	runTasks(t, c, 10)
}

// runTasks sends n tasks and waits for each one's successful result.
func runTasks(t *testing.T, c *scalertest.Client, n uint64) {
	t.Helper()
	for i := uint64(0); i < n; i++ {
		task := c.Task(i)
		if err := c.Send(task); err != nil {
			t.Fatal(err)
		}
		m := must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
		if r := m.(*protocol.TaskResult); r.Type != protocol.ResultSuccess {
			t.Fatalf("result %+v", r)
		}
	}
}

// Every status says how many monitor messages were published (this one
// included): a subscriber that reads everything finds no gap between two
// statuses, while tasks run. The status also names the instance and counts
// no drops.
func TestMonitorSentCounts(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	sub := must[*transport.Endpoint](t)(transport.Connect(transport.Sub, s.MonitorAddr(), transport.Options{}))
	defer sub.Close()
	w := must[*scalertest.Worker](t)(scalertest.StartWorker(s.Addr(), scalertest.WorkerOptions{}))
	defer w.Stop()
	c := must[*scalertest.Client](t)(scalertest.NewClient(s.Addr()))
	defer c.Close()
	go func() {
		for i := uint64(0); i < 300; i++ {
			_ = c.Send(c.Task(i))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var prev *protocol.StateScheduler
	received, intervals, events := uint64(0), 0, uint64(0)
	deadline := time.After(3 * wait)
	for intervals < 3 || events == 0 {
		select {
		case frames := <-sub.Recv():
			received++
			m, err := protocol.Decode(frames[0])
			if err != nil {
				t.Fatal(err)
			}
			st, ok := m.(*protocol.StateScheduler)
			if !ok {
				events++
				continue
			}
			if len(st.InstanceID) != 16 || st.MonitorDropped != 0 || st.MonitorSent == 0 {
				t.Fatalf("status: instance %x dropped %d sent %d", st.InstanceID, st.MonitorDropped, st.MonitorSent)
			}
			if prev != nil {
				if d := st.MonitorSent - prev.MonitorSent; d != received {
					t.Fatalf("monitor_sent grew by %d, %d messages received", d, received)
				}
				if string(st.InstanceID) != string(prev.InstanceID) {
					t.Fatal("instance id changed")
				}
				intervals++
			}
			prev, received = st, 0
		case <-deadline:
			t.Fatalf("%d intervals, %d task events", intervals, events)
		}
	}
}

func TestMonitorFeed(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	sub := must[*transport.Endpoint](t)(transport.Connect(transport.Sub, s.MonitorAddr(), transport.Options{}))
	defer sub.Close()
	scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{})
	deadline := time.After(wait)
	for {
		select {
		case frames := <-sub.Recv():
			m, err := protocol.Decode(frames[0])
			if err != nil {
				t.Fatal(err)
			}
			if st, ok := m.(*protocol.StateScheduler); ok && len(st.Workers) == 1 {
				if len(st.TaskStates) != protocol.NumTaskStates || st.Scheduler.RSS == 0 || len(st.Binder.Received) == 0 {
					t.Fatalf("incomplete status %+v", st)
				}
				return
			}
		case <-deadline:
			t.Fatal("no StateScheduler with the worker")
		}
	}
}

func TestWorkerKilledMidTask(t *testing.T) {
	s := scalertest.StartScheduler(t, func(c *config.Scheduler) { c.WorkerTimeoutSeconds = 1 })
	a := must[*scalertest.Worker](t)(scalertest.StartWorker(s.Addr(), scalertest.WorkerOptions{Name: "a", Hold: true}))
	c := scalertest.ClientFor(t, s.Addr())
	task := c.Task(1)
	must[struct{}](t)(struct{}{}, c.Send(task))
	if !scalertest.WaitFor(wait, func() bool { return len(a.Tasks()) == 1 }) {
		t.Fatal("worker a never got the task")
	}
	b := scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{Name: "b"})
	a.Kill()
	m := must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
	if m.(*protocol.TaskResult).Type != protocol.ResultSuccess || len(b.Tasks()) != 1 {
		t.Fatalf("task not re-run on b: %+v", m)
	}
	// Exactly one result.
	if m, err := c.Recv(300 * time.Millisecond); err == nil && isResult(task.TaskID)(m) {
		t.Fatal("second result delivered")
	}
}

// TestClientVanishes: a client that stops heartbeating times out; its tasks
// are canceled at once and its objects freed object_retention_seconds
// later (worker caches and storage).
func TestClientVanishes(t *testing.T) {
	t.Parallel()
	s := scalertest.StartScheduler(t, func(c *config.Scheduler) { c.ClientTimeoutSeconds, c.ObjectRetentionSeconds = 1, 1 })
	w := scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{Hold: true, QueueSize: 1})
	c := must[*scalertest.Client](t)(scalertest.NewClient(s.Addr()))
	sc := must[*storage.Client](t)(storage.Dial(s.StorageAddr()))
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	obj := bytes.Repeat([]byte{7}, 32)
	if err := sc.Set(ctx, obj, []byte("payload")); err != nil {
		t.Fatal(err)
	}
	must[struct{}](t)(struct{}{}, c.Send(&protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: c.ID,
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{obj}}}))
	running, waiting := c.Task(1), c.Task(2)
	must[struct{}](t)(struct{}{}, c.Send(running))
	must[struct{}](t)(struct{}{}, c.Send(waiting))
	if !scalertest.WaitFor(wait, func() bool { return len(w.Tasks()) == 1 }) {
		t.Fatal("worker never got the task")
	}
	c.Close() // no heartbeats, no goodbye
	seen := func() (cancel, del bool) {
		for _, m := range w.Received() {
			switch m := m.(type) {
			case *protocol.TaskCancel:
				cancel = cancel || bytes.Equal(m.TaskID, running.TaskID)
			case *protocol.ObjectInstruction:
				if m.Type == protocol.InstructionDelete {
					for _, id := range m.Metadata.ObjectIDs {
						del = del || bytes.Equal(id, obj)
					}
				}
			}
		}
		return
	}
	if !scalertest.WaitFor(wait, func() bool { c, _ := seen(); return c }) {
		t.Fatal("worker did not see the cancel")
	}
	canceledAt := time.Now()
	if _, del := seen(); del {
		t.Fatal("object freed together with the cancel, before the retention time")
	}
	if st, err := sc.Stats(ctx); err != nil || st.Objects != 1 {
		t.Fatalf("object gone from storage within the retention time: %+v %v", st, err)
	}
	if !scalertest.WaitFor(wait, func() bool { _, d := seen(); return d }) {
		t.Fatalf("worker did not see the delete: %v", w.Received())
	}
	if d := time.Since(canceledAt); d < 700*time.Millisecond {
		t.Fatalf("object freed %v after the cancel; retention is 1s", d)
	}
	if !scalertest.WaitFor(wait, func() bool {
		st, err := sc.Stats(ctx)
		return err == nil && st.Objects == 0
	}) {
		t.Fatal("object not deleted from storage")
	}
	if len(w.Tasks()) != 1 {
		t.Fatal("the waiting task of the departed client was dispatched")
	}
}

func TestShutdown(t *testing.T) {
	t.Run("protected", func(t *testing.T) {
		s := scalertest.StartScheduler(t, nil)
		c := scalertest.ClientFor(t, s.Addr())
		must[struct{}](t)(struct{}{}, c.Send(&protocol.ClientDisconnect{Type: protocol.DisconnectShutdown}))
		m := must[protocol.Message](t)(c.Expect(wait, func(m protocol.Message) bool { return m.Kind() == protocol.KindClientShutdownResponse }))
		if r := m.(*protocol.ClientShutdownResponse); r.Accepted || r.Reason == "" {
			t.Fatalf("response %+v", r)
		}
		// Still serving.
		must[struct{}](t)(struct{}{}, c.Send(&protocol.ClientHeartbeat{}))
		must[protocol.Message](t)(c.Expect(wait, func(m protocol.Message) bool { return m.Kind() == protocol.KindClientHeartbeatEcho }))
	})
	t.Run("unprotected", func(t *testing.T) {
		s := scalertest.StartScheduler(t, func(c *config.Scheduler) { c.Protected = false })
		w := must[*scalertest.Worker](t)(scalertest.StartWorker(s.Addr(), scalertest.WorkerOptions{}))
		defer w.Kill()
		c := scalertest.ClientFor(t, s.Addr())
		// Make sure the worker is registered before asking.
		task := c.Task(1)
		must[struct{}](t)(struct{}{}, c.Send(task))
		must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
		must[struct{}](t)(struct{}{}, c.Send(&protocol.ClientDisconnect{Type: protocol.DisconnectShutdown}))
		m := must[protocol.Message](t)(c.Expect(wait, func(m protocol.Message) bool { return m.Kind() == protocol.KindClientShutdownResponse }))
		if !m.(*protocol.ClientShutdownResponse).Accepted {
			t.Fatal("refused")
		}
		select {
		case <-s.Done():
			if err := s.Err(); err != nil {
				t.Fatalf("Run returned %v", err)
			}
		case <-time.After(wait):
			t.Fatal("scheduler did not exit")
		}
		if !scalertest.WaitFor(wait, func() bool {
			for _, m := range w.Received() {
				if d, ok := m.(*protocol.ClientDisconnect); ok && d.Type == protocol.DisconnectShutdown {
					return true
				}
			}
			return false
		}) {
			t.Fatal("worker not told to shut down")
		}
	})
}

func TestGarbage(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	raw, err := transport.Connect(transport.Dealer, s.Addr(), transport.Options{Identity: []byte("garbage")})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	inputs := [][][]byte{
		{{}}, {{0}}, {{255, 1, 2}}, {{byte(protocol.KindTask), 0xc1}}, {{byte(protocol.KindTask)}, {1}, {2}},
		{bytes.Repeat([]byte{0xdd}, 1000)}, {{byte(protocol.KindStateScheduler), 0x80}},
		{protocol.MustEncode(&protocol.TaskResult{TaskID: []byte("nope")})},
		{protocol.MustEncode(&protocol.TaskCancelConfirm{TaskID: []byte("nope")})},
		{protocol.MustEncode(&protocol.TaskLog{TaskID: []byte("nope")})},
		{protocol.MustEncode(&protocol.ClientDisconnect{Type: 9})},
	}
	for _, in := range inputs {
		if err := raw.Send(in...); err != nil {
			t.Fatal(err)
		}
	}
	scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{})
	c := scalertest.ClientFor(t, s.Addr())
	task := c.Task(1)
	must[struct{}](t)(struct{}{}, c.Send(task))
	must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// A taken port (here the object storage's port + 1) is an error naming the
// problem, and everything New had already bound is released.
func TestNewFailsCleanlyOnBusyPort(t *testing.T) {
	// Find a bound port whose lower neighbour is free for the scheduler.
	var busy *transport.Endpoint
	var port int
	for try := 0; busy == nil; try++ {
		if try == 50 {
			t.Fatal("no free port below a bound one")
		}
		ep := must[*transport.Endpoint](t)(transport.Bind(transport.Router, "tcp://127.0.0.1:0", transport.Options{}))
		_, _, p, err := transport.ParseAddress(ep.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p-1)); err == nil {
			l.Close()
			busy, port = ep, p
		} else {
			ep.Close()
		}
	}
	defer busy.Close()
	cfg := config.DefaultScheduler()
	cfg.SchedulerAddress = fmt.Sprintf("tcp://127.0.0.1:%d", port-1)
	_, err := server.New(cfg, logging.ForTest("scheduler", io.Discard))
	if err == nil || !strings.Contains(err.Error(), "object storage") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("error %v, want the busy object storage port named", err)
	}
	// The scheduler port it had bound is released (zmq closes listeners
	// asynchronously, so allow it a moment).
	released := scalertest.WaitFor(5*time.Second, func() bool {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port-1))
		if err == nil {
			l.Close()
		}
		return err == nil
	})
	if !released {
		t.Fatal("the scheduler port stayed bound after New failed")
	}
}

// The monitor is an XPUB that publishes only while somebody subscribes: a
// subscriber that comes after tasks ran still gets the states of later
// tasks, and the status.
func TestMonitorFeedAfterLateSubscription(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{})
	c := scalertest.ClientFor(t, s.Addr())
	run := func(i uint64) []byte {
		task := c.Task(i)
		if err := c.Send(task); err != nil {
			t.Fatal(err)
		}
		must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
		return task.TaskID
	}
	for i := uint64(0); i < 5; i++ {
		run(i) // nobody listens yet
	}
	sub := must[*transport.Endpoint](t)(transport.Connect(transport.Sub, s.MonitorAddr(), transport.Options{}))
	defer sub.Close()
	ran := map[string]bool{}
	deadline := time.Now().Add(wait)
	for i := uint64(100); time.Now().Before(deadline); i++ {
		ran[string(run(i))] = true
		for drained := false; !drained; {
			select {
			case frames := <-sub.Recv():
				m, err := protocol.Decode(frames[0])
				if err != nil {
					t.Fatal(err)
				}
				if st, ok := m.(*protocol.StateTask); ok && ran[string(st.TaskID)] {
					return
				}
			case <-time.After(50 * time.Millisecond):
				drained = true
			}
		}
	}
	t.Fatal("no StateTask for a task run after the monitor subscribed")
}

// A worker connected at the local (ipc) address serves a client connected
// over TCP: both endpoints lead to the one ROUTER.
func TestLocalAddressServesWorkers(t *testing.T) {
	local := "ipc://" + t.TempDir() + "/scheduler.sock"
	s := scalertest.StartScheduler(t, func(c *config.Scheduler) { c.LocalAddress = local })
	scalertest.WorkerFor(t, local, scalertest.WorkerOptions{})
	c := scalertest.ClientFor(t, s.Addr())
	runTasks(t, c, 5)
}

func TestLocalAddressInUse(t *testing.T) {
	first := scalertest.StartScheduler(t, nil)
	cfg := config.DefaultScheduler()
	cfg.SchedulerAddress = "tcp://127.0.0.1:0"
	cfg.LocalAddress = first.Addr() // taken: the bind fails, and New says which address
	if _, err := server.New(cfg, logging.ForTest("scheduler", io.Discard)); err == nil || !strings.Contains(err.Error(), "local address") {
		t.Fatalf("New with a taken local address: %v", err)
	}
}
