package server_test

import (
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
)

// sendBatch sends tasks as one Batch, with extra raw elements inserted
// after the first task.
func sendBatch(t *testing.T, c *scalertest.Client, tasks []*protocol.Task, extra ...[]byte) {
	t.Helper()
	if err := c.Announce(scalertest.FuncObjectID); err != nil { // as a client does before its tasks
		t.Fatal(err)
	}
	var frames [][]byte
	for i, task := range tasks {
		frames = append(frames, protocol.MustEncode(task))
		if i == 0 {
			frames = append(frames, extra...)
		}
	}
	if err := c.SendRaw(protocol.MustEncode(&protocol.Batch{Messages: frames})); err != nil {
		t.Fatal(err)
	}
}

func TestBatchOfTasksPlacedAndAnswered(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	w1 := scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{Name: "a"})
	w2 := scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{Name: "b"})
	c := scalertest.ClientFor(t, s.Addr())
	// Both workers registered before the batch arrives.
	if !scalertest.WaitFor(wait, func() bool {
		task := c.Task(1 << 40)
		_ = c.Send(task)
		_, err := c.Expect(wait, isResult(task.TaskID))
		return err == nil
	}) {
		t.Fatal("no worker")
	}
	const n = 200
	var tasks []*protocol.Task
	for i := uint64(0); i < n; i++ {
		tasks = append(tasks, c.Task(i))
	}
	sendBatch(t, c, tasks)
	for _, task := range tasks {
		m := must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
		if r := m.(*protocol.TaskResult); r.Type != protocol.ResultSuccess {
			t.Fatalf("result %+v", r)
		}
	}
	if got := len(w1.Tasks()) + len(w2.Tasks()); got != n+1 {
		t.Fatalf("workers received %d tasks, want %d", got, n+1)
	}
}

func TestBatchGarbageElementSkipped(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{})
	c := scalertest.ClientFor(t, s.Addr())
	tasks := []*protocol.Task{c.Task(1), c.Task(2), c.Task(3)}
	nested := protocol.MustEncode(&protocol.Batch{Messages: [][]byte{
		protocol.MustEncode(c.Task(100)), protocol.MustEncode(c.Task(101)),
	}})
	garbage := [][]byte{{}, {0xff, 0x80}, {byte(protocol.KindTask), 0x81, 0xa1}, []byte("not a message"), nested}
	sendBatch(t, c, tasks, garbage...)
	for _, task := range tasks {
		m := must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
		if r := m.(*protocol.TaskResult); r.Type != protocol.ResultSuccess {
			t.Fatalf("result %+v", r)
		}
	}
	// The nested Batch's tasks were dropped, not run.
	for _, task := range []*protocol.Task{c.Task(100), c.Task(101)} {
		if _, err := c.Expect(300*time.Millisecond, isResult(task.TaskID)); err == nil {
			t.Fatalf("task %x inside a nested Batch was handled", task.TaskID)
		}
	}
	// The server still works afterwards.
	task := c.Task(4)
	if err := c.Send(task); err != nil {
		t.Fatal(err)
	}
	must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
}
