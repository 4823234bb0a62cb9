package scheduler

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
)

type nopOutbox struct{ n int }

func (o *nopOutbox) Send([]byte, protocol.Message)  { o.n++ }
func (o *nopOutbox) Publish(protocol.Message)       {}
func (o *nopOutbox) Listening() bool                { return false } // a scheduler without monitors
func (o *nopOutbox) DeleteObject([]byte)            {}
func (o *nopOutbox) DuplicateObject([]byte, []byte) {}
func (o *nopOutbox) Scale(ScaleRequest)             {}

// BenchmarkTaskLifecycle measures one task from submission to result
// through the pure scheduler: Task in, Task to a worker, TaskResult in,
// TaskResult to the client (16 workers, queue 100, 1600 tasks in flight).
func BenchmarkTaskLifecycle(b *testing.B) {
	out := &nopOutbox{}
	s := New(Config{MaxTasksWaiting: -1}, out, zerolog.New(io.Discard).Level(zerolog.WarnLevel), epoch)
	s.Handle([]byte("c"), &protocol.ClientHeartbeat{}, epoch)
	workers := make([][]byte, 16)
	for i := range workers {
		workers[i] = []byte{'w', byte('a' + i)}
		s.Handle(workers[i], &protocol.WorkerHeartbeat{QueueSize: 100}, epoch)
	}
	const inflight = 1600
	ids := make([][]byte, b.N+inflight)
	for i := range ids {
		ids[i] = make([]byte, 16)
		binary.LittleEndian.PutUint64(ids[i], uint64(i))
	}
	client := []byte("c")
	fn := []byte("fn")
	s.Handle(client, &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: client,
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{fn}}}, epoch)
	submit := func(i int) {
		s.Handle(client, &protocol.Task{TaskID: ids[i], Source: client, FuncObjectID: fn}, epoch)
	}
	runLifecycle(b, s, ids, inflight, submit)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkWorkerHeartbeat measures handling one heartbeat of a worker
// that holds 1,000 tasks, with reconciliation (16-byte ids, all of them
// listed) and without (a worker that does not report, EchoSeq 0).
func BenchmarkWorkerHeartbeat(b *testing.B) {
	for _, reconcile := range []bool{false, true} {
		name := "counts-only"
		if reconcile {
			name = "1000-task-ids"
		}
		b.Run(name, func(b *testing.B) {
			out := &nopOutbox{}
			s := New(Config{MaxTasksWaiting: -1}, out, zerolog.New(io.Discard).Level(zerolog.WarnLevel), epoch)
			client, worker := []byte("c"), []byte("w")
			s.Handle(client, &protocol.ClientHeartbeat{}, epoch)
			announce(s, client)
			s.Handle(worker, &protocol.WorkerHeartbeat{QueueSize: 1000}, epoch)
			hb := &protocol.WorkerHeartbeat{QueueSize: 1000}
			for i := 0; i < 1000; i++ {
				id := make([]byte, 16)
				binary.LittleEndian.PutUint64(id, uint64(i))
				s.Handle(client, &protocol.Task{TaskID: id, Source: client, FuncObjectID: benchFn}, epoch)
				if reconcile {
					hb.Tasks = append(hb.Tasks, id)
				}
			}
			w := s.workers.byID["w"]
			if w.tasks.Len() != 1000 {
				b.Fatalf("worker holds %d tasks", w.tasks.Len())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if reconcile {
					hb.EchoSeq = w.echoSeq
				}
				s.Handle(worker, hb, epoch)
			}
			b.StopTimer()
			if lost, unheld := s.Reconciled(); lost != 0 || unheld != 0 {
				b.Fatalf("reconciled %d lost, %d unheld", lost, unheld)
			}
		})
	}
}

// BenchmarkWaitingTaskMemory measures the live heap one waiting task costs
// the pure scheduler: 100,000 tasks, decoded from their frames as the
// server decodes them, submitted with no worker connected (B/waiting-task:
// heap after a GC, over the heap before, per task).
func BenchmarkWaitingTaskMemory(b *testing.B) {
	const n = 100000
	client := []byte("12345|Client|0123456789abcdef")
	fn := bytes.Repeat([]byte{1}, 32)
	frames := make([][]byte, n)
	for i := range frames {
		id := make([]byte, 16)
		binary.LittleEndian.PutUint64(id, uint64(i))
		frames[i] = protocol.MustEncode(&protocol.Task{TaskID: id, Source: client, FuncObjectID: fn})
	}
	var per float64
	for range b.N {
		s := memoryScheduler(client, fn)
		before := liveHeap()
		for _, f := range frames {
			m, err := protocol.Decode(f)
			if err != nil {
				b.Fatal(err)
			}
			s.Handle(client, m, epoch)
		}
		if s.NumWaiting() != n {
			b.Fatalf("%d waiting", s.NumWaiting())
		}
		per = float64(liveHeap()-before) / n
		runtime.KeepAlive(s)
	}
	b.ReportMetric(per, "B/waiting-task")
}

// memoryScheduler is an unbounded scheduler with no worker, to which
// client is connected and has created the function object fn.
func memoryScheduler(client, fn []byte) *Scheduler {
	s := New(Config{MaxTasksWaiting: -1}, &nopOutbox{}, zerolog.New(io.Discard).Level(zerolog.WarnLevel), epoch)
	s.Handle(client, &protocol.ClientHeartbeat{}, epoch)
	s.Handle(client, &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: client,
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{fn}}}, epoch)
	return s
}

// runLifecycle submits the first inflight tasks of ids, then times b.N
// lifecycles: the result of task i comes from the worker holding it and task
// i+inflight is submitted, so inflight tasks stay in flight.
func runLifecycle(b *testing.B, s *Scheduler, ids [][]byte, inflight int, submit func(int)) {
	for i := 0; i < inflight; i++ {
		submit(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := s.tasks[string(ids[i])]
		s.Handle(t.worker.idb, &protocol.TaskResult{TaskID: ids[i], Type: protocol.ResultSuccess}, epoch)
		submit(i + inflight)
	}
	b.StopTimer()
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkGraphNodeMemory measures the live heap one node of a large
// graph costs the pure scheduler once the graph is accepted (no worker, so
// only its roots are tasks): a binary tree of 100,000 nodes in one
// GraphTask, decoded from its frame (B/node: heap after a GC, over the heap
// before, the decoded message included).
func BenchmarkGraphNodeMemory(b *testing.B) {
	const n = 100000
	client := []byte("12345|Client|0123456789abcdef")
	fn := bytes.Repeat([]byte{1}, 32)
	g := &protocol.GraphTask{TaskID: []byte("graph-0123456789"), Graph: make([]protocol.Task, n)}
	for i := range g.Graph {
		id := make([]byte, 16)
		binary.LittleEndian.PutUint64(id, uint64(i))
		g.Graph[i] = protocol.Task{TaskID: id, FuncObjectID: fn}
		if i > 0 {
			g.Graph[i].Arguments = []protocol.Argument{{Type: protocol.ArgumentTask, Data: g.Graph[(i-1)/2].TaskID}}
		}
	}
	frame := protocol.MustEncode(g)
	g = nil
	var per float64
	for range b.N {
		s := memoryScheduler(client, fn)
		before := liveHeap()
		m, err := protocol.Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		s.Handle(client, m, epoch)
		m = nil
		if len(s.graphs) != 1 {
			b.Fatal("graph not accepted")
		}
		per = float64(liveHeap()-before) / n
		runtime.KeepAlive(s)
	}
	b.ReportMetric(per, "B/node")
}
