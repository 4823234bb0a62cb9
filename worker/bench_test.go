package worker

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
	"github.com/opengris/scaler/internal/scalertest/programs"
)

// Benchmarks of trivial Python tasks (def f(x): return x):
//
//	BenchmarkProcessorDirect   Go drives one processor with no agent: the floor.
//	BenchmarkWorkerAgent       a fake scheduler feeds one worker agent, tasks pipelined.
//	BenchmarkScheduler/N       real scheduler, N in-process workers, pipelined Go client.
//
// The agent's per-task overhead is WorkerAgent's ns/task minus ProcessorDirect's.
// Run: go test ./worker -run '^$' -bench . -benchtime 3000x

const srcIdentity = "def ident(x):\n    return x\n"

func BenchmarkProcessorDirect(b *testing.B) {
	python := programs.Python(b)
	st := startStorage(b)
	h := newHelper(b, python, st)
	fn, arg := h.fn(srcIdentity, "ident"), h.arg("1")
	addr, _ := parseStorageAddress(st)
	a := &agent{cfg: Config{Python: python, GCInterval: 30 * time.Second, LoggingLevel: "ERROR"}}
	// The processor on a blocking socket pair, with no agent loop: the floor.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "agent"), os.NewFile(uintptr(fds[1]), "processor")
	defer mine.Close()
	cmd := a.processorCommand("bench")
	cmd.ExtraFiles = []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	_ = theirs.Close()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	r := bufio.NewReader(mine)
	readFrame := func() {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, r, int64(binary.LittleEndian.Uint32(hdr[:]))); err != nil {
			b.Fatal(err)
		}
	}
	readFrame() // ProcessorInitialized
	pt := &protocol.ProcessorTask{Source: h.client, SerializerID: serializerID(h.client), FuncObjectID: fn,
		ArgumentIDs: [][]byte{arg}, ObjectStorage: addr}
	run := func(i int) {
		pt.TaskID = []byte(fmt.Sprintf("%016d", i))
		frame := protocol.MustEncode(pt)
		if _, err := mine.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(frame)))); err != nil {
			b.Fatal(err)
		}
		if _, err := mine.Write(frame); err != nil {
			b.Fatal(err)
		}
		readFrame()
	}
	run(-1) // warm the caches
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		run(i)
	}
	reportTasks(b, start)
}

func reportTasks(b *testing.B, start time.Time) {
	d := time.Since(start)
	b.ReportMetric(float64(b.N)/d.Seconds(), "tasks/s")
	b.ReportMetric(float64(d.Microseconds())/float64(b.N), "µs/task")
}

func BenchmarkWorkerAgent(b *testing.B) {
	e := startWorker(b, func(c *Config) { c.LoggingLevel = "ERROR" })
	fn, arg := e.h.fn(srcIdentity, "ident"), e.h.arg("1")
	warm := e.h.task(fn, 0, arg)
	e.sched.send(warm)
	e.sched.result(warm.TaskID, 30*time.Second)
	tasks := make([]*protocol.Task, b.N)
	for i := range tasks {
		tasks[i] = e.h.task(fn, 0, arg)
		tasks[i].KeepResult = false // a plain task: the small result is inline-only
	}
	b.ResetTimer()
	start := time.Now()
	for _, t := range tasks {
		e.sched.send(t)
	}
	for n := 0; n < b.N; {
		if _, ok := e.sched.next(30 * time.Second).(*protocol.TaskResult); ok {
			n++
		}
	}
	reportTasks(b, start)
}

func BenchmarkScheduler(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			c, h, stop := startBenchCluster(b, n)
			defer stop()
			fn, arg := h.fn(srcIdentity, "ident"), h.arg("1")
			// Warm up every worker's processor.
			var warm []*protocol.Task
			for i := 0; i < 20*n; i++ {
				t := h.task(fn, 0, arg)
				warm = append(warm, t)
				_ = c.Send(t)
			}
			for range warm {
				if _, err := c.Expect(60*time.Second, isResult); err != nil {
					b.Fatal(err)
				}
			}
			tasks := make([]*protocol.Task, b.N)
			for i := range tasks {
				tasks[i] = h.task(fn, 0, arg)
				tasks[i].KeepResult = false // a plain task: the small result is inline-only
			}
			b.ResetTimer()
			start := time.Now()
			for _, t := range tasks {
				_ = c.Send(t)
			}
			for i := 0; i < b.N; i++ {
				if _, err := c.Expect(60*time.Second, isResult); err != nil {
					b.Fatal(err)
				}
			}
			reportTasks(b, start)
		})
	}
}

// startBenchCluster starts a real scheduler, a Go client and n in-process
// workers; stop ends the workers and the client.
func startBenchCluster(b *testing.B, n int) (*scalertest.Client, *helper, func()) {
	python := programs.Python(b)
	s := scalertest.StartScheduler(b, nil)
	c, err := scalertest.NewClient(s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	h := newHelperFor(b, python, s.StorageAddr(), c.ID)
	ctx, cancel := context.WithCancel(context.Background())
	var dones []chan error
	for i := 0; i < n; i++ {
		done := make(chan error, 1)
		dones = append(dones, done)
		cfg := Config{Name: fmt.Sprintf("bench%d", i), SchedulerAddress: s.Addr(), Python: python,
			HeartbeatInterval: time.Second, LoggingLevel: "ERROR"}
		go func() { done <- Run(ctx, cfg, testLog(b, "worker").Level(3)) }()
	}
	return c, h, func() {
		cancel()
		for _, d := range dones {
			<-d
		}
		c.Close()
	}
}

func isResult(m protocol.Message) bool { _, ok := m.(*protocol.TaskResult); return ok }

// BenchmarkRoundTrip: one task at a time through a real scheduler and one
// worker, from a Go client: the latency floor under the Python client.
func BenchmarkRoundTrip(b *testing.B) {
	c, h, stop := startBenchCluster(b, 1)
	defer stop()
	fn, arg := h.fn(srcIdentity, "ident"), h.arg("1")
	roundTrip := func() time.Duration {
		t := h.task(fn, 0, arg)
		t.KeepResult = false
		start := time.Now()
		_ = c.Send(t)
		if _, err := c.Expect(60*time.Second, isResult); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for i := 0; i < 20; i++ {
		roundTrip() // warm up the processor's caches
	}
	samples := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range samples {
		samples[i] = roundTrip()
	}
	b.StopTimer()
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds()), "p99-µs")
}
