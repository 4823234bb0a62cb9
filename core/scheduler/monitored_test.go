package scheduler

import (
	"io"
	"testing"

	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/protocol"
)

// With an Outbox that reports nobody listening, tasks and graphs publish
// no per-task state, while workers still do (they are few) and clients
// get every answer; once somebody listens, task states are published again.
func TestNoTaskStatesWithoutListeners(t *testing.T) {
	out := &fakeOutbox{deaf: true}
	s := New(Config{MaxTasksWaiting: -1}, out, logging.ForTest("scheduler", io.Discard), epoch)
	c, w := []byte("c"), []byte("w")
	s.Handle(c, &protocol.ClientHeartbeat{}, epoch)
	s.Handle(c, &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: c,
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("fn")}}}, epoch)
	s.Handle(w, &protocol.WorkerHeartbeat{QueueSize: 10}, epoch)
	run := func(id string) {
		s.Handle(c, newTask(id, "c"), epoch)
		s.Handle(w, &protocol.TaskResult{TaskID: []byte(id), Type: protocol.ResultSuccess}, epoch)
		s.Handle(c, &protocol.GraphTask{TaskID: []byte("G" + id), Graph: []protocol.Task{*newTask("n"+id, "c")}}, epoch)
		s.Handle(w, &protocol.TaskResult{TaskID: []byte("n" + id), Type: protocol.ResultSuccess}, epoch)
		s.Handle(c, newTask("x"+id, "c"), epoch)
		s.Handle(c, &protocol.TaskCancel{TaskID: []byte("x" + id), Force: true}, epoch)
		s.Handle(w, &protocol.TaskCancelConfirm{TaskID: []byte("x" + id), Type: protocol.CancelConfirmCanceled}, epoch)
	}
	kinds := func() map[protocol.Kind]int {
		k := map[protocol.Kind]int{}
		for _, m := range out.published {
			k[m.Kind()]++
		}
		out.published = nil
		return k
	}
	answers := func() int {
		n := 0
		for _, m := range out.sent {
			if m.to == "c" && (m.msg.Kind() == protocol.KindTaskResult || m.msg.Kind() == protocol.KindTaskCancelConfirm) {
				n++
			}
		}
		out.sent = nil
		return n
	}
	if k := kinds(); k[protocol.KindStateWorker] != 1 {
		t.Fatalf("worker connect not published: %v", k)
	}
	answers()
	run("1")
	if k := kinds(); len(k) != 0 {
		t.Fatalf("published without listeners: %v", k)
	}
	if n := answers(); n != 4 { // task, node, graph, cancel
		t.Fatalf("%d answers to the client, want 4", n)
	}
	out.deaf = false
	run("2")
	k := kinds()
	// Task: Running, Success; node: Running, Success; canceled task:
	// Running, Canceling, Canceled; one StateGraphTask.
	if k[protocol.KindStateTask] != 7 || k[protocol.KindStateGraphTask] != 1 {
		t.Fatalf("published with a listener: %v", k)
	}
	if n := answers(); n != 4 {
		t.Fatalf("%d answers to the client, want 4", n)
	}
}
