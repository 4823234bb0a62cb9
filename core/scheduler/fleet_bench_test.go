package scheduler

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
)

// Sizes of the fleet benchmarks (issue 19: 1,000 workers, 100,000 queued
// tasks). Smaller runs: go test ./core/scheduler -run '^$' -bench Fleet
// -args -fleet.workers=100 -fleet.tasks=10000
var (
	fleetWorkers = flag.Int("fleet.workers", 1000, "workers of the fleet benchmarks")
	fleetTasks   = flag.Int("fleet.tasks", 100000, "tasks of BenchmarkFleetBalance")
)

var benchFn = []byte("fn")

// announce registers the benchmarks' function object for client.
func announce(s *Scheduler, client []byte) {
	s.Handle(client, &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: client,
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{benchFn}}}, epoch)
}

func benchScheduler(mod func(*Config)) (*Scheduler, []byte) {
	cfg := Config{MaxTasksWaiting: -1, WorkerTimeout: time.Hour, ClientTimeout: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	s := New(cfg, &nopOutbox{}, zerolog.New(io.Discard).Level(zerolog.WarnLevel), epoch)
	client := []byte("client")
	s.Handle(client, &protocol.ClientHeartbeat{}, epoch)
	announce(s, client)
	return s, client
}

func benchWorkerID(i int) []byte { return []byte(fmt.Sprintf("%d|Worker|bench|%08x", 1000+i%97, i)) }

func benchTaskID(i int) []byte {
	id := make([]byte, 16)
	binary.LittleEndian.PutUint64(id, uint64(i))
	return id
}

// BenchmarkFleetTaskLifecycle is BenchmarkTaskLifecycle with a fleet: one
// task from submission to result through the pure scheduler, with 4 and
// with -fleet.workers workers (queue 100, 800 for 4) and 1,600 tasks in flight, so
// what a task costs must not grow with the workers.
//
// In the "gpu" runs every worker offers gpu (a tenth gpu and mem) and every
// task needs gpu, in "gpu+mem" both: placement then goes through the
// capability indexes.
func BenchmarkFleetTaskLifecycle(b *testing.B) {
	for _, n := range []int{4, *fleetWorkers} {
		for _, needs := range []string{"", "gpu", "gpu+mem"} {
			name := fmt.Sprintf("workers=%d", n)
			var need map[string]int64
			switch needs {
			case "gpu":
				need = map[string]int64{"gpu": -1}
			case "gpu+mem":
				need = map[string]int64{"gpu": -1, "mem": 1}
			}
			if needs != "" {
				name += "/" + needs
			}
			b.Run(name, func(b *testing.B) { benchLifecycle(b, n, need) })
		}
	}
}

const lifecycleInflight = 1600

func benchLifecycle(b *testing.B, n int, need map[string]int64) {
	s, client := benchScheduler(nil)
	for i := 0; i < n; i++ {
		var caps map[string]int64
		queue := max(100, 2*lifecycleInflight/n)
		if need != nil {
			caps = map[string]int64{"gpu": -1}
			if i%10 == 0 {
				caps["mem"] = 1 << 30
				// With 4 workers one offers mem: it must hold every task
				// in flight, or the gpu+mem run leaves some waiting.
				queue = max(queue, lifecycleInflight)
			}
		}
		s.Handle(benchWorkerID(i), &protocol.WorkerHeartbeat{QueueSize: uint32(queue), Capabilities: caps}, epoch)
	}
	const inflight = 1600
	ids := make([][]byte, b.N+inflight)
	for i := range ids {
		ids[i] = benchTaskID(i)
	}
	submit := func(i int) {
		s.Handle(client, &protocol.Task{TaskID: ids[i], Source: client, FuncObjectID: benchFn, Capabilities: need}, epoch)
	}
	runLifecycle(b, s, ids, inflight, submit)
	if s.numWaiting != 0 {
		b.Fatalf("%d tasks waiting", s.numWaiting)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkFleetHeartbeat is the scheduler's cost of one worker heartbeat
// in a fleet of -fleet.workers workers, each holding 10 tasks that its
// heartbeats list (reconciliation on), taken in turn.
func BenchmarkFleetHeartbeat(b *testing.B) {
	for _, n := range []int{4, *fleetWorkers} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			s, client := benchScheduler(nil)
			const held = 10
			ids := make([][]byte, n)
			for i := range ids {
				ids[i] = benchWorkerID(i)
				s.Handle(ids[i], &protocol.WorkerHeartbeat{QueueSize: held}, epoch)
			}
			for i := 0; i < n*held; i++ {
				s.Handle(client, &protocol.Task{TaskID: benchTaskID(i), Source: client, FuncObjectID: benchFn}, epoch)
			}
			hbs := make([]*protocol.WorkerHeartbeat, n)
			ws := make([]*worker, n)
			for i, id := range ids {
				w := s.workers.byID[string(id)]
				if w.tasks.Len() != held {
					b.Fatalf("worker %d holds %d tasks", i, w.tasks.Len())
				}
				hb := &protocol.WorkerHeartbeat{QueueSize: held}
				for e := w.tasks.Front(); e != nil; e = e.Next() {
					hb.Tasks = append(hb.Tasks, e.Value.(*task).msg.TaskID)
				}
				hbs[i], ws[i] = hb, w
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := i % n
				hbs[k].EchoSeq = ws[k].echoSeq
				s.Handle(ids[k], hbs[k], epoch)
			}
			b.StopTimer()
			if lost, unheld := s.Reconciled(); lost != 0 || unheld != 0 {
				b.Fatalf("reconciled %d lost, %d unheld", lost, unheld)
			}
		})
	}
}

// BenchmarkFleetBalance times one balance pass with -fleet.tasks tasks
// queued on the workers. "piled": on a tenth of -fleet.workers workers
// while the others are idle, the pass after a burst of new workers (it
// moves most tasks); "spread": on all but a hundredth, placed evenly, the
// few idle ones new (it moves one task per idle worker).
// "decide" is the policy alone; "pass" is Scheduler.balance, which also
// publishes the advice and sends one TaskCancel per task moved (to a
// discarding outbox). Between passes the workers refuse every cancel
// (CancelConfirmFailed, untimed), so each pass sees the same state.
func BenchmarkFleetBalance(b *testing.B) {
	for _, layout := range []string{"piled", "spread"} {
		for _, policy := range []Policy{PolicyEven, PolicyCapability} {
			for _, what := range []string{"decide", "pass"} {
				name := map[Policy]string{PolicyEven: "even", PolicyCapability: "capability"}[policy]
				b.Run(fmt.Sprintf("%s/%s/%s/workers=%d/tasks=%d", layout, name, what, *fleetWorkers, *fleetTasks), func(b *testing.B) {
					benchBalance(b, layout, policy, what)
				})
			}
		}
	}
}

func benchBalance(b *testing.B, layout string, policy Policy, what string) {
	s, client := benchScheduler(func(c *Config) { c.Policy = policy; c.BalanceTriggerTimes = 1 })
	loaded := max(*fleetWorkers/10, 1)
	if layout == "spread" {
		loaded = max(*fleetWorkers-*fleetWorkers/100, 1)
	}
	queue := uint32((*fleetTasks + loaded - 1) / loaded)
	for i := 0; i < loaded; i++ {
		s.Handle(benchWorkerID(i), &protocol.WorkerHeartbeat{QueueSize: queue}, epoch)
	}
	for i := 0; i < *fleetTasks; i++ {
		s.Handle(client, &protocol.Task{TaskID: benchTaskID(i), Source: client, FuncObjectID: benchFn}, epoch)
	}
	for i := loaded; i < *fleetWorkers; i++ {
		s.Handle(benchWorkerID(i), &protocol.WorkerHeartbeat{QueueSize: queue}, epoch)
	}
	if s.numWaiting != 0 || len(s.tasks) != *fleetTasks {
		b.Fatalf("%d tasks, %d waiting", len(s.tasks), s.numWaiting)
	}
	moved := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if what == "decide" {
			advice := s.balanceAdvice()
			moved = 0
			for _, ts := range advice {
				moved += len(ts)
			}
			continue
		}
		s.balance()
		b.StopTimer()
		moved = 0
		for _, t := range s.tasks {
			if t.state == protocol.TaskStateBalanceCanceling {
				moved++
				s.Handle(t.worker.idb, &protocol.TaskCancelConfirm{TaskID: t.msg.TaskID, Type: protocol.CancelConfirmFailed}, epoch)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	if moved == 0 {
		b.Fatal("the balance moved nothing")
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/pass")
	b.ReportMetric(float64(moved), "moved")
}
