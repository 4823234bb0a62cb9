// Command fleet measures one scheduler process with many workers and many
// clients (issue 19, "Scale benchmarks"): tasks/s through the scheduler
// with W Go echo workers and C clients, each client's latency percentiles,
// and the scheduler's CPU per worker heartbeat while the fleet idles.
//
// The scheduler is a child process (the scaler binary: `scaler scheduler`),
// so its CPU time is its own (read from /proc). The echo workers
// run -per-process to a child process of this program, on one loop per
// process; the clients (internal/scalertest) in this process. A benchmark, not a test:
//
//	go run ./bench/fleet -scheduler bin/scaler -workers 4,1000 -clients 1,100
//	go run ./bench/fleet -scheduler new=bin/scaler,old=/tmp/old/scaler -rounds 3
//
// With several binaries and rounds the runs are interleaved (round 1: every
// binary, every size; round 2: the same ...) and the medians printed last.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/procstat"
	"github.com/opengris/scaler/internal/scalertest"
	"github.com/opengris/scaler/internal/scalertest/procs"
	"github.com/opengris/scaler/transport"
)

var (
	schedulers = flag.String("scheduler", "bin/scaler", "scaler binaries to run the scheduler with: PATH or LABEL=PATH, comma-separated")
	workerList = flag.String("workers", "4,1000", "worker counts, comma-separated")
	clientList = flag.String("clients", "1,100", "client counts, comma-separated (every worker count runs with every client count)")
	perProcess = flag.Int("per-process", 200, "echo workers per worker process")
	tasks      = flag.Int("tasks", 200000, "tasks per run, shared out among the clients")
	window     = flag.Int("window", 4000, "tasks in flight per run, shared out among the clients (at least 1 each)")
	queueSize  = flag.Uint("queue", 1000, "queue size the echo workers announce")
	heartbeat  = flag.Duration("heartbeat", 2*time.Second, "echo worker heartbeat interval (the workers' default is 2 s)")
	idle       = flag.Duration("idle", 10*time.Second, "how long the fleet idles to measure the scheduler's heartbeat cost (0: skip)")
	rounds     = flag.Int("rounds", 1, "rounds, each running every binary at every size")
	capability = flag.String("capability", "", "a capability every echo worker offers and every task needs (placement then goes through the capability indexes)")
	verbose    = flag.Bool("v", false, "say what is happening on stderr")

	// Worker host mode (the program runs itself as the worker processes).
	hostAddr = flag.String("host", "", "internal: run -n echo workers against this scheduler until stdin closes")
	hostN    = flag.Int("n", 0, "internal: workers of a host")
	hostName = flag.String("name", "fleet", "internal: worker name prefix of a host")
	relay    = flag.Bool("relay", false, "the echo workers of a worker process share one connection, their messages wrapped in Relays (docs/protocol.md §7.7)")
)

func main() {
	flag.Parse()
	if *hostAddr != "" {
		if err := runHost(*hostAddr, *hostN, *hostName, *relay); err != nil {
			fmt.Fprintln(os.Stderr, "fleet host:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	if *verbose {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

type binary struct{ label, path string }

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// result is what one run measured.
type result struct {
	tasksPerS       float64
	schedCPUPerS    float64 // scheduler CPU seconds per second during the tasks
	schedUSPerTask  float64
	zmqUSPerTask    float64       // of which libzmq's I/O threads
	hostUSPerTask   float64       // CPU of the worker processes per task
	selfUSPerTask   float64       // CPU of this process (the clients) per task
	p50, p99        time.Duration // over every task of every client
	worstP99        time.Duration // the highest p99 of one client
	heartbeats      uint64        // heartbeats handled while idle
	idleCPUPerS     float64       // scheduler CPU seconds per second while idle
	usPerHeartbeat  float64       // idle scheduler CPU per heartbeat handled
	tasksPerFrame   float64       // tasks per scheduler message that carried tasks to a worker
	resultsPerFrame float64       // results per worker message that carried results
}

func run() error {
	var bins []binary
	for _, f := range strings.Split(*schedulers, ",") {
		label, path, ok := strings.Cut(f, "=")
		if !ok {
			label, path = filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), f
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("scheduler binary: %w", err)
		}
		bins = append(bins, binary{label, path})
	}
	ws, err := parseInts(*workerList)
	if err != nil {
		return fmt.Errorf("-workers: %w", err)
	}
	cs, err := parseInts(*clientList)
	if err != nil {
		return fmt.Errorf("-clients: %w", err)
	}
	type key struct {
		bin              string
		workers, clients int
	}
	all := map[key][]result{}
	var keys []key
	for round := 1; round <= *rounds; round++ {
		for _, w := range ws {
			for _, c := range cs {
				for _, b := range bins {
					r, err := runOnce(b, w, c)
					if err != nil {
						return fmt.Errorf("%s, %d workers, %d clients: %w", b.label, w, c, err)
					}
					k := key{b.label, w, c}
					if all[k] == nil {
						keys = append(keys, k)
					}
					all[k] = append(all[k], r)
					fmt.Printf("round %d  %-14s workers=%-5d clients=%-4d %s\n", round, b.label, w, c, r)
				}
			}
		}
	}
	if *rounds > 1 {
		fmt.Println("medians:")
		for _, k := range keys {
			fmt.Printf("         %-14s workers=%-5d clients=%-4d %s\n", k.bin, k.workers, k.clients, median(all[k]))
		}
	}
	return nil
}

func (r result) String() string {
	s := fmt.Sprintf("%8.0f tasks/s  p50 %6.2f ms  p99 %6.2f ms  worst client p99 %6.2f ms  scheduler %4.0f%% CPU, %5.2f µs/task (zmq I/O %5.2f)",
		r.tasksPerS, ms(r.p50), ms(r.p99), ms(r.worstP99), 100*r.schedCPUPerS, r.schedUSPerTask, r.zmqUSPerTask)
	s += fmt.Sprintf("; workers %5.2f, clients %5.2f µs/task", r.hostUSPerTask, r.selfUSPerTask)
	if r.tasksPerFrame > 0 {
		s += fmt.Sprintf("; per message on a worker connection %.2f tasks in, %.2f results out", r.tasksPerFrame, r.resultsPerFrame)
	}
	if r.heartbeats > 0 {
		s += fmt.Sprintf("  | idle: %d heartbeats, scheduler %.2f%% CPU, %.1f µs/heartbeat", r.heartbeats, 100*r.idleCPUPerS, r.usPerHeartbeat)
	}
	return s
}

// caps is what -capability makes workers offer and tasks need.
func caps() map[string]int64 {
	if *capability == "" {
		return nil
	}
	return map[string]int64{*capability: -1}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		if len(v)%2 == 0 {
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		return v[len(v)/2]
	}
	return result{
		tasksPerS:       pick(func(r result) float64 { return r.tasksPerS }),
		schedCPUPerS:    pick(func(r result) float64 { return r.schedCPUPerS }),
		schedUSPerTask:  pick(func(r result) float64 { return r.schedUSPerTask }),
		zmqUSPerTask:    pick(func(r result) float64 { return r.zmqUSPerTask }),
		hostUSPerTask:   pick(func(r result) float64 { return r.hostUSPerTask }),
		selfUSPerTask:   pick(func(r result) float64 { return r.selfUSPerTask }),
		p50:             time.Duration(pick(func(r result) float64 { return float64(r.p50) })),
		p99:             time.Duration(pick(func(r result) float64 { return float64(r.p99) })),
		worstP99:        time.Duration(pick(func(r result) float64 { return float64(r.worstP99) })),
		heartbeats:      uint64(pick(func(r result) float64 { return float64(r.heartbeats) })),
		idleCPUPerS:     pick(func(r result) float64 { return r.idleCPUPerS }),
		usPerHeartbeat:  pick(func(r result) float64 { return r.usPerHeartbeat }),
		tasksPerFrame:   pick(func(r result) float64 { return r.tasksPerFrame }),
		resultsPerFrame: pick(func(r result) float64 { return r.resultsPerFrame }),
	}
}

// freePorts finds P with P, P+1 and P+2 free on 127.0.0.1 (the scheduler,
// its object storage and its monitor), below Linux's ephemeral range.
func freePorts() (int, error) {
	for p := 20000 + os.Getpid()%5000*2; p < 32000; p += 3 {
		ok := true
		var ls []net.Listener
		for i := 0; i < 3 && ok; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			_ = l.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, errors.New("no three free ports in a row")
}

// runOnce starts a scheduler and a fleet of w workers, measures the idle
// heartbeat cost, then runs the tasks through c clients.
func runOnce(b binary, w, c int) (r result, err error) {
	port, err := freePorts()
	if err != nil {
		return r, err
	}
	addr := "tcp://127.0.0.1:" + strconv.Itoa(port)
	monAddr := "tcp://127.0.0.1:" + strconv.Itoa(port+2)
	// The clients send one heartbeat only: a longer client timeout than
	// the default 60 s keeps them registered through long runs.
	sched := exec.Command(b.path, "scheduler", addr, "-ll", "WARNING", "-ct", "600")
	sched.Stdout, sched.Stderr = os.Stderr, os.Stderr
	sched.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM} // gone with this process, however it ends
	if err := sched.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = sched.Process.Signal(syscall.SIGTERM)
		procs.WaitOrKillGroup(sched, 10*time.Second)
	}()
	pid := sched.Process.Pid

	// The worker processes.
	self, err := os.Executable()
	if err != nil {
		return r, err
	}
	var hosts []*exec.Cmd
	var stdins []io.WriteCloser
	var statLines []chan string
	defer func() {
		for _, in := range stdins {
			_ = in.Close() // the host stops its workers and exits
		}
		for _, h := range hosts {
			procs.WaitOrKillGroup(h, 20*time.Second)
		}
	}()
	for i := 0; i*(*perProcess) < w; i++ {
		n := min(*perProcess, w-i*(*perProcess))
		h := exec.Command(self, "-host", addr, "-n", strconv.Itoa(n), "-name", fmt.Sprintf("fleet%d", i),
			"-heartbeat", heartbeat.String(), "-queue", strconv.Itoa(int(*queueSize)), "-capability", *capability,
			"-relay="+strconv.FormatBool(*relay))
		h.Stderr = os.Stderr
		h.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM} // gone with this process, however it ends
		in, err := h.StdinPipe()
		if err != nil {
			return r, err
		}
		out, err := h.StdoutPipe()
		if err != nil {
			return r, err
		}
		if err := h.Start(); err != nil {
			return r, err
		}
		hosts, stdins = append(hosts, h), append(stdins, in)
		lines := make(chan string, 1)
		statLines = append(statLines, lines)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "stats ") {
					lines <- sc.Text()
				}
			}
		}()
	}
	logf("%s: scheduler pid %d at %s, %d worker processes", b.label, pid, addr, len(hosts))

	// Every worker registered: the status lists w workers.
	if _, err := waitStatus(monAddr, 3*time.Minute, func(st *protocol.StateScheduler) bool { return len(st.Workers) >= w }); err != nil {
		return r, fmt.Errorf("workers registering: %w", err)
	}
	logf("%d workers registered", w)

	if *idle > 0 {
		// Heartbeats counted by the scheduler itself (two statuses around
		// an idle time with nobody subscribed to the monitor: the status,
		// built once a second for subscribers, is O(workers)).
		before, err := waitStatus(monAddr, 30*time.Second, func(*protocol.StateScheduler) bool { return true })
		if err != nil {
			return r, err
		}
		cpu0, _ := procstat.Read(pid)
		t0 := time.Now()
		time.Sleep(*idle)
		after, err := waitStatus(monAddr, 30*time.Second, func(*protocol.StateScheduler) bool { return true })
		if err != nil {
			return r, err
		}
		cpu1, _ := procstat.Read(pid)
		el := time.Since(t0)
		r.heartbeats = received(after, "WorkerHeartbeat") - received(before, "WorkerHeartbeat")
		r.idleCPUPerS = float64(cpu1-cpu0) / 1e9 / el.Seconds()
		if r.heartbeats > 0 {
			r.usPerHeartbeat = float64(cpu1-cpu0) / 1e3 / float64(r.heartbeats)
		}
		time.Sleep(2 * time.Second)
	}

	// The clients, registered before the clock starts.
	clients := make([]*scalertest.Client, c)
	for i := range clients {
		if clients[i], err = scalertest.NewClient(addr); err != nil {
			return r, err
		}
		defer clients[i].Close()
	}
	per := max(*tasks/c, 1)
	win := max(*window/c, 1)
	lat := make([][]time.Duration, c)
	errs := make([]error, c)
	var wg sync.WaitGroup
	start := make(chan struct{})
	frames0, err := hostFrames(stdins, statLines)
	if err != nil {
		return r, err
	}
	cpu0, _ := procstat.Read(pid)
	zmq0 := zmqCPU(pid)
	host0, self0 := hostsCPU(hosts), selfCPU()
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			lat[i], errs[i] = drive(cl, per, win)
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	el := time.Since(t0)
	cpu1, _ := procstat.Read(pid)
	zmq1 := zmqCPU(pid)
	host1, self1 := hostsCPU(hosts), selfCPU()
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	frames1, err := hostFrames(stdins, statLines)
	if err != nil {
		return r, err
	}
	if d := frames1.sub(frames0); d.taskFrames > 0 && d.resultFrames > 0 {
		r.tasksPerFrame = float64(d.tasks) / float64(d.taskFrames)
		r.resultsPerFrame = float64(d.results) / float64(d.resultFrames)
	}
	var every []time.Duration
	for _, l := range lat {
		every = append(every, l...)
		if p := percentile(l, 0.99); p > r.worstP99 {
			r.worstP99 = p
		}
	}
	r.tasksPerS = float64(len(every)) / el.Seconds()
	r.p50, r.p99 = percentile(every, 0.5), percentile(every, 0.99)
	r.schedCPUPerS = float64(cpu1-cpu0) / 1e9 / el.Seconds()
	r.schedUSPerTask = float64(cpu1-cpu0) / 1e3 / float64(len(every))
	r.zmqUSPerTask = float64(zmq1-zmq0) / 1e3 / float64(len(every))
	r.hostUSPerTask = float64(host1-host0) / 1e3 / float64(len(every))
	r.selfUSPerTask = float64(self1-self0) / 1e3 / float64(len(every))
	return r, nil
}

// drive keeps win tasks of cl in flight until n have results, and returns
// each task's time from send to result. The tasks that one message of
// results frees go out together, as one Batch, as the Python client sends
// what one I/O cycle produced.
func drive(cl *scalertest.Client, n, win int) ([]time.Duration, error) {
	sentAt := make(map[string]time.Time, win)
	lat := make([]time.Duration, 0, n)
	sent := 0
	var next []*protocol.Task
	add := func() {
		t := cl.Task(uint64(sent))
		t.Capabilities = caps()
		sentAt[string(t.TaskID)] = time.Now()
		sent++
		next = append(next, t)
	}
	send := func() error {
		err := cl.SendAll(next)
		next = next[:0]
		return err
	}
	for sent < n && sent < win {
		add()
	}
	if err := send(); err != nil {
		return nil, err
	}
	for len(lat) < n {
		m, err := cl.Recv(30 * time.Second)
		if err != nil {
			return nil, fmt.Errorf("after %d results: %w", len(lat), err)
		}
		if res, ok := m.(*protocol.TaskResult); ok {
			if res.Type != protocol.ResultSuccess {
				return nil, fmt.Errorf("task %x: %v %s", res.TaskID, res.Type, res.Message)
			}
			if at, ok := sentAt[string(res.TaskID)]; ok {
				delete(sentAt, string(res.TaskID))
				lat = append(lat, time.Since(at))
				if sent < n {
					add()
				}
			}
		}
		if cl.Buffered() == 0 && len(next) > 0 {
			if err := send(); err != nil {
				return nil, err
			}
		}
	}
	return lat, nil
}

// frameCounts are an echo host's counts: the messages it received that
// carried tasks and those tasks, the messages it sent that carried results
// and those results.
type frameCounts struct{ taskFrames, tasks, resultFrames, results uint64 }

func (a frameCounts) sub(b frameCounts) frameCounts {
	return frameCounts{a.taskFrames - b.taskFrames, a.tasks - b.tasks, a.resultFrames - b.resultFrames, a.results - b.results}
}

// hostFrames asks every echo host for its counts (a "stats" line on its
// stdin, answered on its stdout) and adds them up.
func hostFrames(stdins []io.WriteCloser, lines []chan string) (frameCounts, error) {
	var sum frameCounts
	for i, in := range stdins {
		if _, err := io.WriteString(in, "stats\n"); err != nil {
			return sum, fmt.Errorf("echo host %d: %w", i, err)
		}
	}
	for i, ch := range lines {
		select {
		case line := <-ch:
			var c frameCounts
			if _, err := fmt.Sscanf(line, "stats %d %d %d %d", &c.taskFrames, &c.tasks, &c.resultFrames, &c.results); err != nil {
				return sum, fmt.Errorf("echo host %d: %q: %w", i, line, err)
			}
			sum.taskFrames, sum.tasks = sum.taskFrames+c.taskFrames, sum.tasks+c.tasks
			sum.resultFrames, sum.results = sum.resultFrames+c.resultFrames, sum.results+c.results
		case <-time.After(10 * time.Second):
			return sum, fmt.Errorf("echo host %d did not answer for its counts", i)
		}
	}
	return sum, nil
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

// hostsCPU is the CPU time of the worker processes, in nanoseconds.
func hostsCPU(hosts []*exec.Cmd) uint64 {
	var sum uint64
	for _, h := range hosts {
		cpu, _ := procstat.Read(h.Process.Pid)
		sum += cpu
	}
	return sum
}

func selfCPU() uint64 {
	cpu, _ := procstat.Read(0)
	return cpu
}

// zmqCPU is the CPU time of process pid's libzmq I/O threads (named
// ZMQbg/IO/<n>), in nanoseconds, at the kernel's clock-tick resolution.
func zmqCPU(pid int) uint64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tids, _ := os.ReadDir(dir)
	var ticks uint64
	for _, tid := range tids {
		comm, err := os.ReadFile(dir + tid.Name() + "/comm")
		if err != nil || !strings.HasPrefix(string(comm), "ZMQbg/IO/") {
			continue
		}
		stat, err := os.ReadFile(dir + tid.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: state is the
		// 3rd field of stat, utime the 14th and stime the 15th.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseUint(f[11], 10, 64)
			k, _ := strconv.ParseUint(f[12], 10, 64)
			ticks += u + k
		}
	}
	return ticks * 1e7 // USER_HZ is 100 on Linux
}

func received(st *protocol.StateScheduler, kind string) uint64 {
	for _, c := range st.Binder.Received {
		if c.Name == kind {
			return c.Count
		}
	}
	return 0
}

// waitStatus subscribes to the scheduler's status messages until one
// satisfies ok, then unsubscribes (closes).
func waitStatus(monAddr string, timeout time.Duration, ok func(*protocol.StateScheduler) bool) (*protocol.StateScheduler, error) {
	sub, err := transport.Connect(transport.Sub, monAddr, transport.Options{Subscribe: [][]byte{{byte(protocol.KindStateScheduler)}}})
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last *protocol.StateScheduler
	for {
		select {
		case frames, open := <-sub.Recv():
			if !open {
				return nil, errors.New("monitor socket closed")
			}
			m, decoded := scalertest.DecodeFrames(frames)
			if !decoded {
				continue
			}
			if st, isStatus := m.(*protocol.StateScheduler); isStatus {
				last = st
				if ok(st) {
					return st, nil
				}
			}
		case <-ctx.Done():
			if last != nil {
				return nil, fmt.Errorf("no status as wanted within %v (the last listed %d workers)", timeout, len(last.Workers))
			}
			return nil, fmt.Errorf("no status within %v", timeout)
		}
	}
}

// echoWorker is one worker of a host: a DEALER that answers every Task
// at once with a successful TaskResult (the task's function object as its
// result, as scalertest's echo workers do) and heartbeats every -heartbeat.
type echoWorker struct {
	id   []byte
	sock *transport.Socket // its own connection; nil when relayed over the host's
	seq  uint64            // Seq of the last heartbeat echo
	out  [][]byte          // answers not sent yet
}

// runHost runs n echo workers on one loop (one epoll poller over their
// sockets) until stdin closes. With relayed, the workers share one
// connection, each one's messages wrapped in a Relay (docs/protocol.md
// §7.7); otherwise each has its own. An echo worker answers every task with
// success at once and every cancel with not-found. What one read produced
// is answered together: several answers of a worker as one Batch (as the
// real agent sends what one loop iteration produced, worker/agent_link.go
// flushOut), and with relayed, every worker's answers as one message.
func runHost(addr string, n int, name string, relayed bool) error {
	runtime.LockOSThread()
	poller, err := transport.NewPoller()
	if err != nil {
		return err
	}
	defer poller.Close()
	waker, err := transport.NewWaker()
	if err != nil {
		return err
	}
	defer waker.Close()
	if err := poller.Add(waker.Fd(), false); err != nil {
		return err
	}
	ws := make([]*echoWorker, 0, n)
	byID := map[string]*echoWorker{}
	bySock := map[int]*transport.Socket{}
	sockWorker := map[*transport.Socket]*echoWorker{}
	var socks []*transport.Socket
	open := func(id []byte) (*transport.Socket, error) {
		sock, err := transport.Open(transport.Dealer, addr, false, transport.Options{Identity: id})
		if err != nil {
			return nil, err
		}
		socks = append(socks, sock)
		bySock[sock.Fd()] = sock
		return sock, poller.Add(sock.Fd(), false)
	}
	var shared *transport.Socket
	if relayed {
		if shared, err = open([]byte(fmt.Sprintf("%d|Host|%s|%016x", os.Getpid(), name, rand.Uint64()))); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		w := &echoWorker{id: []byte(fmt.Sprintf("%d|Worker|%s-%d|%016x", os.Getpid(), name, i, rand.Uint64()))}
		if !relayed {
			if w.sock, err = open(w.id); err != nil {
				return err
			}
			sockWorker[w.sock] = w
		}
		ws = append(ws, w)
		byID[string(w.id)] = w
	}
	// Its stdin: a "stats" line asks for its counts (frameCounts) on stdout;
	// the end of it stops the host.
	quit, statsAsked := make(chan struct{}), make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "stats" {
				statsAsked <- struct{}{}
				waker.Wake()
			}
		}
		close(quit)
		waker.Wake()
	}()
	var counts frameCounts
	var pending []*echoWorker // workers with answers to send
	answer := func(w *echoWorker, frame []byte) {
		if len(w.out) == 0 {
			pending = append(pending, w)
		}
		w.out = append(w.out, frame)
	}
	tasksInFrame := 0
	handle := func(w *echoWorker, m protocol.Message) {
		switch m := m.(type) {
		case *protocol.Task:
			tasksInFrame++
			answer(w, protocol.MustEncode(&protocol.TaskResult{TaskID: m.TaskID, Type: protocol.ResultSuccess,
				Results: [][]byte{m.FuncObjectID}}))
		case *protocol.TaskCancel:
			answer(w, protocol.MustEncode(&protocol.TaskCancelConfirm{TaskID: m.TaskID, Type: protocol.CancelConfirmNotFound}))
		case *protocol.WorkerHeartbeatEcho:
			w.seq = m.Seq
		}
	}
	// receive handles one message read from sock.
	receive := func(sock *transport.Socket, frames [][]byte) error {
		tasksInFrame = 0
		err := scalertest.EachMessage(frames, func(m protocol.Message) error {
			if shared == nil {
				handle(sockWorker[sock], m)
				return nil
			}
			r, ok := m.(*protocol.Relay)
			if !ok {
				return nil
			}
			w := byID[string(r.Worker)]
			if w == nil {
				return nil
			}
			for _, f := range r.Messages {
				m, err := protocol.Decode(f)
				if err != nil {
					return err
				}
				handle(w, m)
			}
			return nil
		})
		if tasksInFrame > 0 {
			counts.taskFrames++
			counts.tasks += uint64(tasksInFrame)
		}
		return err
	}
	// flush sends what pending workers have to say: each on its own
	// connection, or all as Relays on the shared one.
	flush := func() error {
		var relays [][]byte
		for _, w := range pending {
			results := 0
			for _, f := range w.out {
				if protocol.Kind(f[0]) == protocol.KindTaskResult {
					results++
				}
			}
			counts.results += uint64(results)
			if shared != nil {
				relays = append(relays, protocol.MustEncode(&protocol.Relay{Worker: w.id, Messages: w.out}))
			} else {
				frames := protocol.Coalesce(w.out)
				if results > 0 {
					counts.resultFrames += uint64(len(frames))
				}
				for _, f := range frames {
					if err := w.sock.Send(f); err != nil {
						return err
					}
				}
			}
			w.out = nil
		}
		pending = pending[:0]
		if len(relays) > 0 {
			frames := protocol.Coalesce(relays)
			counts.resultFrames += uint64(len(frames))
			for _, f := range frames {
				if err := shared.Send(f); err != nil {
					return err
				}
			}
		}
		return nil
	}
	beatAll := func() error {
		for _, w := range ws {
			answer(w, protocol.MustEncode(&protocol.WorkerHeartbeat{QueueSize: uint32(*queueSize), TaskLock: true,
				Tasks: [][]byte{}, EchoSeq: w.seq, Capabilities: caps()}))
		}
		return flush()
	}
	defer func() {
		for _, w := range ws {
			answer(w, protocol.MustEncode(&protocol.DisconnectRequest{Worker: w.id}))
		}
		_ = flush()
		for _, sock := range socks {
			_ = sock.Close()
		}
	}()
	// touched are the sockets that must be read until empty: the
	// descriptor is only a hint, and sending may consume its signal, so a
	// socket is left only after a read found nothing.
	touched := append([]*transport.Socket(nil), socks...)
	if err := beatAll(); err != nil {
		return err
	}
	next := time.Now().Add(*heartbeat)
	fmt.Println("ready")
	for {
		select {
		case <-quit:
			return nil
		case <-statsAsked:
			fmt.Printf("stats %d %d %d %d\n", counts.taskFrames, counts.tasks, counts.resultFrames, counts.results)
		default:
		}
		if !time.Now().Before(next) {
			next = time.Now().Add(*heartbeat)
			if err := beatAll(); err != nil {
				return err
			}
			touched = append(touched[:0], socks...)
		}
		for len(touched) > 0 {
			sock := touched[len(touched)-1]
			touched = touched[:len(touched)-1]
			// Read until empty, answer, and read again: the answer's send
			// may consume the signal of what arrived meanwhile.
			for {
				frames, err := sock.TryRecv()
				if err != nil {
					return err
				}
				if frames != nil {
					if err := receive(sock, frames); err != nil {
						return err
					}
					continue
				}
				if len(pending) == 0 {
					break
				}
				if err := flush(); err != nil {
					return err
				}
			}
		}
		ready, err := poller.Wait(time.Until(next))
		if err != nil {
			return err
		}
		for _, r := range ready {
			if r.Fd == waker.Fd() {
				waker.Drain()
			} else if sock := bySock[r.Fd]; sock != nil {
				touched = append(touched, sock)
			}
		}
	}
}
