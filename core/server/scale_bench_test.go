package server_test

// Scale benchmarks of the scheduler's memory (issue 19): a real scheduler
// process (bin/scaler scheduler) fed by a Go client and drained by Go echo
// workers in this process, its memory read from /proc/<pid>/status. They
// print their figures (b.ReportMetric and b.Logf) and assert nothing about
// them. Sizes are flags, small by default so that `-bench .` stays short:
//
//	go build -o bin/scaler . && go test ./core/server -run '^$' -bench 'Scale' -benchtime 1x \
//	    -scale.tasks 1000000 -scale.nodes 1000000
//
// docs/performance.md ("Scale") has the figures.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
	"github.com/opengris/scaler/internal/scalertest/freeport"
	"github.com/opengris/scaler/internal/scalertest/procs"
)

var (
	scaleTasks   = flag.Int("scale.tasks", 100000, "BenchmarkScaleWaiting: tasks submitted while no worker is connected")
	scaleNodes   = flag.Int("scale.nodes", 100000, "BenchmarkScaleGraph: nodes of the one graph")
	scaleWorkers = flag.Int("scale.workers", 8, "Go echo workers that drain the tasks")
	scaleQueue   = flag.Int("scale.queue", 1000, "queue size of each echo worker")
	scaleBinary  = flag.String("scale.binary", "", "scaler binary (default: $SCALER_BINARY, else bin/scaler of the repository)")
	scaleIdle    = flag.Duration("scale.idle", 30*time.Second, "longest wait for the scheduler's idle memory release after the drain")
	scaleRead    = flag.Int("scale.client-rate", 0, "BenchmarkScaleWaiting: the client reads at most this many results a second (0: as fast as it can), as a slower client would")
	scaleLog     = flag.String("scale.log", "", "write the scheduler's log (DEBUG) to this file instead of a temporary one")
	scaleMsgSize = flag.String("scale.max-message-size", "1G", "the scheduler's --max-message-size: a 1,000,000-node GraphTask is about 120 MB, over the 64M default")
)

// schedProc is a scheduler process started for a benchmark.
type schedProc struct {
	cmd  *exec.Cmd
	addr string
	log  string
}

func startSchedulerProcess(b *testing.B, args ...string) *schedProc {
	b.Helper()
	bin := *scaleBinary
	if bin == "" {
		bin = os.Getenv("SCALER_BINARY")
	}
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "scaler")
	}
	if _, err := os.Stat(bin); err != nil {
		b.Skipf("no scaler binary (%v): go build -o bin/scaler . first, or pass -scale.binary", err)
	}
	port := freeport.Ports(b, 3)
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	logPath := *scaleLog
	if logPath == "" {
		logPath = filepath.Join(b.TempDir(), "scheduler.log")
	} else {
		_ = os.Remove(logPath) // the scheduler appends
	}
	// DEBUG: the idle memory release is logged at debug level, with the
	// live heap (the benchmark reads it from the log).
	argv := append([]string{"scheduler", addr, "--logging-paths", logPath, "--logging-level", "DEBUG",
		"--max-message-size", *scaleMsgSize}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", bin, err)
	}
	p := &schedProc{cmd: cmd, addr: addr, log: logPath}
	b.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		procs.WaitOrKillGroup(cmd, 10*time.Second)
	})
	return p
}

// mem reads VmRSS and VmHWM (bytes) of the scheduler.
func (p *schedProc) mem(b *testing.B) (rss, hwm uint64) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("scheduler status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// cpu is the scheduler's CPU time so far (user + system, from
// /proc/<pid>/stat): on a loaded machine a steadier figure than the wall
// time.
func (p *schedProc) cpu(b *testing.B) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("scheduler stat: %v", err)
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th of them, in clock ticks (100 a second
	// on Linux).
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

var (
	heapField = regexp.MustCompile(`heap_live=(\d+)`)
	rssField  = regexp.MustCompile(`rss_after=(\d+)`)
)

// waitRelease waits for the scheduler's idle memory release
// (core/server/memrelease.go) and returns the live heap and RSS it logged;
// zeros if it did not come within -scale.idle.
func (p *schedProc) waitRelease(b *testing.B) (heap, rss uint64) {
	b.Helper()
	deadline := time.Now().Add(*scaleIdle)
	for time.Now().Before(deadline) {
		f, err := os.Open(p.log)
		if err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<16), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if !strings.Contains(line, "free memory returned to the system") {
					continue
				}
				if m := heapField.FindStringSubmatch(line); m != nil {
					heap, _ = strconv.ParseUint(m[1], 10, 64)
				}
				if m := rssField.FindStringSubmatch(line); m != nil {
					rss, _ = strconv.ParseUint(m[1], 10, 64)
				}
			}
			_ = f.Close()
			if rss > 0 {
				return heap, rss
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	b.Logf("no idle memory release logged within %v; the log's last line: %s", *scaleIdle, lines[len(lines)-1])
	return 0, 0
}

// idle waits for the idle memory release and returns the live heap it
// logged and the RSS then; if none was logged (an older scheduler, or none
// within -scale.idle), the RSS read at the end of the wait.
func (p *schedProc) idle(b *testing.B) (heap, rss uint64) {
	b.Helper()
	heap, rss = p.waitRelease(b)
	if rss == 0 {
		rss, _ = p.mem(b)
	}
	return heap, rss
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// taskID is a 16-byte id: n, then a tag that keeps benchmarks apart.
func taskID(tag byte, n uint64) []byte {
	id := make([]byte, 16)
	binary.LittleEndian.PutUint64(id, n)
	id[15] = tag
	return id
}

// sendBatched sends tasks [from, to) of c in Batches (as the Python client
// does for a map), each task as Client.Task builds it.
func sendBatched(b *testing.B, c *scalertest.Client, from, to int) {
	b.Helper()
	const chunk = 4096
	frames := make([][]byte, 0, chunk)
	for i := from; i < to; i++ {
		t := &protocol.Task{TaskID: taskID(1, uint64(i)), Source: c.ID, FuncObjectID: scalertest.FuncObjectID}
		frames = append(frames, protocol.MustEncode(t))
		if len(frames) == chunk || i == to-1 {
			for _, f := range protocol.Coalesce(frames) {
				if err := c.SendRaw(f); err != nil {
					b.Fatalf("send: %v", err)
				}
			}
			frames = frames[:0]
		}
	}
}

// barrier returns once the scheduler has handled everything c sent before:
// it answers a cancel of an unknown task, in order with c's other messages.
func barrier(b *testing.B, c *scalertest.Client, timeout time.Duration) {
	b.Helper()
	id := taskID(0xff, uint64(time.Now().UnixNano()))
	if err := c.Peer.Send(&protocol.TaskCancel{TaskID: id}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Expect(timeout, func(m protocol.Message) bool {
		cc, ok := m.(*protocol.TaskCancelConfirm)
		return ok && bytes.Equal(cc.TaskID, id)
	}); err != nil {
		b.Fatalf("barrier: %v", err)
	}
}

// keepAlive heartbeats c every 5 s until the benchmark ends: a client
// silent for --client-timeout-seconds (60) is dropped and its tasks
// cancelled, and a run at 1,000,000 may take longer than that.
func keepAlive(b *testing.B, c *scalertest.Client) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = c.Peer.Send(&protocol.ClientHeartbeat{})
			}
		}
	}()
	b.Cleanup(func() { close(stop); <-done })
}

func startWorkers(b *testing.B, addr string, opt scalertest.WorkerOptions) []*scalertest.Worker {
	b.Helper()
	ws := make([]*scalertest.Worker, *scaleWorkers)
	for i := range ws {
		o := opt
		o.Name = fmt.Sprintf("scale%d", i)
		o.QueueSize = uint32(*scaleQueue)
		o.Heartbeat = time.Second
		w, err := scalertest.StartWorker(addr, o)
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
		b.Cleanup(w.Stop)
	}
	return ws
}

// awaitResults receives until want messages accepted by count arrived;
// it fails after a minute without any message.
func awaitResults(b *testing.B, c *scalertest.Client, want int, count func(protocol.Message) bool) {
	b.Helper()
	start := time.Now()
	for got := 0; got < want; {
		if r := *scaleRead; r > 0 && got%1000 == 0 {
			if ahead := time.Duration(got)*time.Second/time.Duration(r) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		m, err := c.Recv(time.Minute)
		if err != nil {
			b.Fatalf("after %d of %d: %v", got, want, err)
		}
		if r, ok := m.(*protocol.TaskResult); ok && r.Type != protocol.ResultSuccess {
			b.Fatalf("task %x: %s %s", r.TaskID, r.Type, r.Message)
		}
		if count(m) {
			got++
		}
	}
}

// startWithClient starts a scheduler process and connects a client to it
// that keeps itself alive and has announced the echo function; both are
// closed when b ends.
func startWithClient(b *testing.B) (*schedProc, *scalertest.Client) {
	b.Helper()
	p := startSchedulerProcess(b)
	c, err := scalertest.NewClient(p.addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	keepAlive(b, c)
	if err := c.Announce(scalertest.FuncObjectID); err != nil {
		b.Fatal(err)
	}
	return p, c
}

// drained is what awaitDrain read.
type drained struct {
	took, cpu      time.Duration // since start; the scheduler's CPU since then
	hwm, heap, rss uint64        // peak RSS; live heap and RSS after the idle release
}

// awaitDrain waits for want TaskResults on c, then reads the time since
// start, the scheduler's CPU over cpu0, its peak RSS, and its live heap and
// RSS once it has released memory on going idle.
func (p *schedProc) awaitDrain(b *testing.B, c *scalertest.Client, want int, start time.Time, cpu0 time.Duration) drained {
	b.Helper()
	awaitResults(b, c, want, func(m protocol.Message) bool { return m.Kind() == protocol.KindTaskResult })
	d := drained{took: time.Since(start), cpu: p.cpu(b) - cpu0}
	_, d.hwm = p.mem(b)
	d.heap, d.rss = p.idle(b)
	return d
}

// BenchmarkScaleWaiting submits -scale.tasks tasks while no worker is
// connected, then starts -scale.workers echo workers and waits for every
// result. Figures: the scheduler's RSS per waiting task, the drain time,
// the peak RSS, and the RSS and live heap after the idle release.
func BenchmarkScaleWaiting(b *testing.B) {
	n := *scaleTasks
	for range b.N {
		p, c := startWithClient(b)
		barrier(b, c, 10*time.Second)
		rss0, _ := p.mem(b)
		start := time.Now()
		sendBatched(b, c, 0, n)
		barrier(b, c, 10*time.Minute)
		submit := time.Since(start)
		rss1, _ := p.mem(b)
		cpuSubmit := p.cpu(b)
		start = time.Now()
		startWorkers(b, p.addr, scalertest.WorkerOptions{})
		d := p.awaitDrain(b, c, n, start, cpuSubmit)
		drain, cpuDrain, hwm, heap, rss2 := d.took, d.cpu, d.hwm, d.heap, d.rss
		perTask := (float64(rss1) - float64(rss0)) / float64(n)
		b.Logf("tasks=%d submit=%.2fs (%.0f tasks/s, scheduler CPU %.2fs) rss_start=%.1fMiB rss_waiting=%.1fMiB per_waiting_task=%.0fB "+
			"drain=%.2fs (%.0f tasks/s, %d workers, scheduler CPU %.2fs) rss_peak=%.1fMiB after_idle: rss=%.1fMiB heap_live=%.1fMiB",
			n, submit.Seconds(), float64(n)/submit.Seconds(), cpuSubmit.Seconds(), mib(rss0), mib(rss1), perTask,
			drain.Seconds(), float64(n)/drain.Seconds(), *scaleWorkers, cpuDrain.Seconds(), mib(hwm), mib(rss2), mib(heap))
		b.ReportMetric(cpuSubmit.Seconds()+cpuDrain.Seconds(), "sched-cpu-s")
		b.ReportMetric(perTask, "B/waiting-task")
		b.ReportMetric(drain.Seconds(), "drain-s")
		b.ReportMetric(mib(hwm), "peak-MiB")
		b.ReportMetric(mib(rss2), "idle-MiB")
		b.ReportMetric(mib(heap), "idle-heap-MiB")
	}
}

// BenchmarkScaleGraph runs one GraphTask of -scale.nodes nodes, a binary
// tree (node i depends on node (i-1)/2: depth log2(n), so every level runs
// in parallel), on -scale.workers echo workers answering inline, and waits
// for the graph's answer. Figures: the time, the scheduler's peak RSS (per
// node over the start), and the RSS and live heap after the idle release.
func BenchmarkScaleGraph(b *testing.B) {
	n := *scaleNodes
	for range b.N {
		p, c := startWithClient(b)
		startWorkers(b, p.addr, scalertest.WorkerOptions{InlineResult: []byte("r")})
		barrier(b, c, 10*time.Second)
		rss0, _ := p.mem(b)
		g := &protocol.GraphTask{TaskID: taskID(2, 1<<40), Graph: make([]protocol.Task, n)}
		for i := range g.Graph {
			g.Graph[i] = protocol.Task{TaskID: taskID(2, uint64(i)), FuncObjectID: scalertest.FuncObjectID}
			if i > 0 {
				g.Graph[i].Arguments = []protocol.Argument{{Type: protocol.ArgumentTask, Data: g.Graph[(i-1)/2].TaskID}}
			}
		}
		g.Targets = [][]byte{g.Graph[n-1].TaskID}
		frame := protocol.MustEncode(g)
		cpu0 := p.cpu(b)
		start := time.Now()
		if err := c.SendRaw(frame); err != nil {
			b.Fatal(err)
		}
		// n node results, then the graph's own.
		d := p.awaitDrain(b, c, n+1, start, cpu0)
		took, cpu, hwm, heap, rss2 := d.took, d.cpu, d.hwm, d.heap, d.rss
		perNode := (float64(hwm) - float64(rss0)) / float64(n)
		b.Logf("nodes=%d frame=%.1fMiB took=%.2fs (%.0f nodes/s, %d workers, scheduler CPU %.2fs) rss_start=%.1fMiB rss_peak=%.1fMiB "+
			"(%.0f B/node) after_idle: rss=%.1fMiB heap_live=%.1fMiB",
			n, mib(uint64(len(frame))), took.Seconds(), float64(n)/took.Seconds(), *scaleWorkers, cpu.Seconds(),
			mib(rss0), mib(hwm), perNode, mib(rss2), mib(heap))
		b.ReportMetric(took.Seconds(), "graph-s")
		b.ReportMetric(cpu.Seconds(), "sched-cpu-s")
		b.ReportMetric(mib(hwm), "peak-MiB")
		b.ReportMetric(perNode, "peak-B/node")
		b.ReportMetric(mib(rss2), "idle-MiB")
		b.ReportMetric(mib(heap), "idle-heap-MiB")
	}
}
