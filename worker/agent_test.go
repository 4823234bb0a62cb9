package worker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/wait"
)

const srcAdd = "def add(a, b):\n    return a + b\n"

func TestTaskRunsAndReturns(t *testing.T) {
	e := startWorker(t, nil)
	fn := e.h.fn(srcAdd, "add")
	task := e.h.task(fn, 0, e.h.arg("20"), e.h.arg("22"))
	e.sched.send(task)

	// The result object is announced before the result.
	oi, ok := e.sched.next(20 * time.Second).(*protocol.ObjectInstruction)
	if !ok || oi.Type != protocol.InstructionCreate || string(oi.ObjectUser) != string(e.h.client) {
		t.Fatalf("want ObjectInstruction{create} first, got %#v", oi)
	}
	res := e.sched.result(task.TaskID, 10*time.Second)
	if res.Type != protocol.ResultSuccess || len(res.Results) != 1 || string(res.Results[0]) != string(oi.Metadata.ObjectIDs[0]) {
		t.Fatalf("result %+v", res)
	}
	if got := e.h.result(res.Results[0]); got != "42" {
		t.Fatalf("result value %s", got)
	}
	if len(res.Inline) == 0 {
		t.Error("small result not inlined")
	}
	if res.Profile.DurationS <= 0 {
		t.Errorf("profile %+v", res.Profile)
	}

	// An exception comes back as a failed result holding the exception.
	bad := e.h.fn("def bad():\n    raise ValueError('nope')\n", "bad")
	task = e.h.task(bad, 0)
	res = e.run(task, 10*time.Second)
	if res.Type != protocol.ResultFailed {
		t.Fatalf("result %+v", res)
	}
	if got := e.h.result(res.Results[0]); got != "!ValueError: nope" {
		t.Fatalf("failure value %s", got)
	}

	// Heartbeats carry the processor and the capabilities.
	hb := <-e.sched.heartbeat
	for len(hb.Processors) == 0 {
		hb = <-e.sched.heartbeat
	}
	if hb.QueueSize != 1000 || hb.Processors[0].PID == 0 || hb.RSSFree == 0 || hb.Agent.RSS == 0 {
		t.Errorf("heartbeat %+v", hb)
	}
}

// Without KeepResult a small outcome (value or exception) is inline-only:
// no storage object, no ObjectInstruction{create}, empty Results. A large
// one is still stored.
func TestSmallResultInlineOnly(t *testing.T) {
	e := startWorker(t, nil)
	fn := e.h.fn(srcAdd, "add")
	task := e.h.task(fn, 0, e.h.arg("20"), e.h.arg("22"))
	task.KeepResult = false
	e.sched.send(task)
	m := e.sched.next(20 * time.Second)
	res, ok := m.(*protocol.TaskResult)
	if !ok {
		t.Fatalf("want TaskResult only, got %#v", m)
	}
	if res.Type != protocol.ResultSuccess || len(res.Results) != 0 || len(res.Inline) == 0 {
		t.Fatalf("result %+v", res)
	}

	bad := e.h.fn("def bad():\n    raise ValueError('nope')\n", "bad")
	task = e.h.task(bad, 0)
	task.KeepResult = false
	e.sched.send(task)
	m = e.sched.next(20 * time.Second)
	if res, ok = m.(*protocol.TaskResult); !ok || res.Type != protocol.ResultFailed || len(res.Results) != 0 || len(res.Inline) == 0 {
		t.Fatalf("want an inline-only failed TaskResult, got %#v", m)
	}

	big := e.h.fn("def big():\n    return 'x' * 100000\n", "big")
	task = e.h.task(big, 0)
	task.KeepResult = false
	e.sched.send(task)
	if oi, ok := e.sched.next(20 * time.Second).(*protocol.ObjectInstruction); !ok || oi.Type != protocol.InstructionCreate {
		t.Fatalf("large result: want ObjectInstruction{create} first, got %#v", oi)
	}
	res = e.sched.result(task.TaskID, 10*time.Second)
	if res.Type != protocol.ResultSuccess || len(res.Results) != 1 || len(res.Inline) != 0 {
		t.Fatalf("large result %+v", res)
	}
}

func TestPriorityOrderAndStreamedOutput(t *testing.T) {
	e := startWorker(t, nil)
	dir := t.TempDir()
	started, release := filepath.Join(dir, "gate-started"), filepath.Join(dir, "gate-release")
	// gate holds the processor until the test releases it, so that every
	// later task is queued on the worker before any of them runs. It has
	// the highest priority, so none of them suspends it.
	gate := e.h.fn(srcGate, "gate")
	echo := e.h.fn("def echo(x):\n    print('out', x)\n    return x\n", "echo")
	first := e.h.task(gate, 10, e.h.arg(pyStr(started)), e.h.arg(pyStr(release)))
	e.sched.send(first)
	waitForFile(t, started, 30*time.Second)
	queued := []*protocol.Task{
		e.h.task(echo, 1, e.h.arg("'a1'")),
		e.h.task(echo, 5, e.h.arg("'b5'")),
		e.h.task(echo, 3, e.h.arg("'c3'")),
		e.h.task(echo, 5, e.h.arg("'d5'")),
		e.h.task(echo, 1, e.h.arg("'e1'")),
	}
	queued[1].StreamOutput = true
	for _, task := range queued {
		e.sched.send(task)
	}
	// Release the gate only once the agent holds all of them. The
	// heartbeat lists every task held (the running gate and the queued
	// ones) and the last echo's seq, for the scheduler's reconciliation.
	hb := waitForHeartbeat(t, e.sched, 30*time.Second, "all tasks queued", func(hb *protocol.WorkerHeartbeat) bool {
		return hb.QueuedTasks == uint32(len(queued))
	})
	held := map[string]bool{}
	for _, id := range hb.Tasks {
		held[string(id)] = true
	}
	for _, task := range append([]*protocol.Task{first}, queued...) {
		if !held[string(task.TaskID)] {
			t.Errorf("heartbeat does not list task %x (lists %d)", task.TaskID, len(hb.Tasks))
		}
	}
	if len(hb.Tasks) != 1+len(queued) || hb.EchoSeq == 0 {
		t.Errorf("heartbeat lists %d tasks with echo seq %d; want %d and > 0", len(hb.Tasks), hb.EchoSeq, 1+len(queued))
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var order []string
	var logs []string
	for len(order) < 1+len(queued) {
		switch m := e.sched.next(20 * time.Second).(type) {
		case *protocol.TaskResult:
			if m.Type != protocol.ResultSuccess {
				t.Fatalf("result %+v", m)
			}
			order = append(order, e.h.result(m.Results[0]))
		case *protocol.TaskLog:
			logs = append(logs, m.Content)
		}
	}
	// Higher priority first; arrival order within a priority.
	if got, want := strings.Join(order, ","), "'gate','b5','d5','c3','a1','e1'"; got != want {
		t.Errorf("order %s, want %s", got, want)
	}
	if strings.Join(logs, "") != "out b5\n" {
		t.Errorf("logs %q", logs)
	}
}

// srcGate writes the file started, then waits (bounded) for the file release.
const srcGate = "import os, time\ndef gate(started, release):\n    open(started, 'w').close()\n    end = time.time() + 60\n    while not os.path.exists(release):\n        if time.time() > end:\n            return 'gate-timeout'\n        time.sleep(0.01)\n    return 'gate'\n"

// waitForHeartbeat waits until the worker sends a heartbeat for which ok
// holds, and returns it.
func waitForHeartbeat(t *testing.T, s *fakeScheduler, d time.Duration, what string, ok func(*protocol.WorkerHeartbeat) bool) *protocol.WorkerHeartbeat {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case hb := <-s.heartbeat:
			if ok(hb) {
				return hb
			}
		case <-deadline:
			t.Fatalf("no heartbeat within %v showing %s", d, what)
			return nil
		}
	}
}

func TestPreloadRunsOncePerProcessorBeforeTasks(t *testing.T) {
	dir := t.TempDir()
	mod := "import os\nCALLS = []\ndef setup(tag, n=0):\n    CALLS.append((tag, n))\n    with open(os.path.join(" + pyStr(dir) + ", 'preload-%d' % os.getpid()), 'a') as f:\n        f.write('%s %d\\n' % (tag, n))\n"
	if err := os.WriteFile(filepath.Join(dir, "mypreload.py"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", dir)
	e := startWorker(t, func(c *Config) { c.Preload = "mypreload:setup('prod', n=3)" })
	fn := e.h.fn("def calls():\n    import mypreload\n    return mypreload.CALLS\n", "calls")
	for i := 0; i < 2; i++ {
		task := e.h.task(fn, 0)
		res := e.run(task, 20*time.Second)
		if got := e.h.result(res.Results[0]); got != "[('prod', 3)]" {
			t.Fatalf("preload calls seen by task %d: %s", i, got)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "preload-*"))
	if len(files) != 1 {
		t.Fatalf("want one processor's preload file, got %v", files)
	}
}

func pyStr(s string) string { return "'" + strings.ReplaceAll(s, "'", "\\'") + "'" }

func TestPreloadFailureStopsWorker(t *testing.T) {
	e := startWorker(t, func(c *Config) { c.Preload = "no_such_module_xyz:setup()" })
	err, ended := e.agent.Ended(20 * time.Second)
	if !ended {
		t.Fatal("worker did not stop after a failing preload")
	}
	if !errors.Is(err, ErrPreload) || !strings.Contains(err.Error(), "no_such_module_xyz") {
		t.Fatalf("Run returned %v", err)
	}
}

func TestTaskTimeout(t *testing.T) {
	e := startWorker(t, func(c *Config) { c.TaskTimeout = time.Second })
	sleep := e.h.fn("import time\ndef sleep(s):\n    time.sleep(s)\n    return s\n", "sleep")
	task := e.h.task(sleep, 0, e.h.arg("30"))
	start := time.Now()
	res := e.run(task, 20*time.Second)
	if res.Type != protocol.ResultFailedTimeout || len(res.Results) != 0 {
		t.Fatalf("result %+v", res)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout took %s", d)
	}
	// The replacement processor runs the next task.
	if res := e.call(sleep, "0"); res.Type != protocol.ResultSuccess {
		t.Fatalf("after timeout: %+v", res)
	}
}

func TestProcessorCrashMidTask(t *testing.T) {
	e := startWorker(t, nil)
	crash := e.h.fn("import os\ndef crash():\n    os._exit(3)\n", "crash")
	res := e.call(crash)
	if res.Type != protocol.ResultFailedProcessorDied || !strings.Contains(res.Message, "exit status 3") {
		t.Fatalf("result %+v", res)
	}
	res = e.call(e.h.fn(srcAdd, "add"), "1", "2")
	if res.Type != protocol.ResultSuccess || e.h.result(res.Results[0]) != "3" {
		t.Fatalf("after crash: %+v", res)
	}
}

// startPidTask starts a task that writes its processor's pid to a file and
// sleeps; it returns the task and the pid once the task runs.
func startPidTask(t *testing.T, e *workerEnv) (*protocol.Task, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pid")
	fn := e.h.fn("import os, time\ndef hold(path):\n    open(path + '.tmp', 'w').write(str(os.getpid()))\n    os.rename(path + '.tmp', path)\n    time.sleep(120)\n", "hold")
	task := e.h.task(fn, 0, e.h.arg(fmt.Sprintf("%q", path)))
	e.sched.send(task)
	var pid int
	wait.Until(t, 30*time.Second, "the task to start", func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		_, err = fmtSscan(string(b), &pid)
		return err == nil
	})
	return task, pid
}

// A processor terminated (SIGTERM) while its worker is being stopped too, as
// Slurm's scancel or systemd stop every process of the worker, must not fail
// its task: the worker's disconnect returns it to the scheduler. Without the
// grace the agent reported ProcessorDiedError first (seen in CI).
func TestTerminatedProcessorOfAStoppingWorkerFailsNoTask(t *testing.T) {
	e := startWorker(t, nil)
	task, pid := startPidTask(t, e)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the agent sees the processor's death first
	e.agent.Cancel()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := e.sched.next(time.Until(deadline))
		switch m := m.(type) {
		case *protocol.TaskResult:
			if string(m.TaskID) == string(task.TaskID) {
				t.Fatalf("the task failed although its worker was stopping: %+v", m)
			}
		case *protocol.DisconnectRequest:
			return
		}
	}
}

// A processor terminated on its own (a SIGTERM to it alone) still fails its
// task with ProcessorDiedError, after the grace.
func TestTerminatedProcessorFailsItsTaskAfterTheGrace(t *testing.T) {
	e := startWorker(t, nil)
	task, pid := startPidTask(t, e)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := e.sched.result(task.TaskID, 30*time.Second)
	if res.Type != protocol.ResultFailedProcessorDied || !strings.Contains(res.Message, "terminated") {
		t.Fatalf("result %+v", res)
	}
	// The worker goes on with a new processor.
	if res := e.call(e.h.fn(srcAdd, "add"), "1", "2"); res.Type != protocol.ResultSuccess {
		t.Fatalf("after the terminated processor: %+v", res)
	}
}

func TestIdleProcessorDeathIsReplaced(t *testing.T) {
	e := startWorker(t, nil)
	pidFn := e.h.fn("import os\ndef pid():\n    return os.getpid()\n", "pid")
	res := e.call(pidFn)
	var pid int
	if _, err := fmtSscan(e.h.result(res.Results[0]), &pid); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Wait until the agent has noticed the death and has a ready
	// replacement, instead of guessing with a sleep.
	waitForHeartbeat(t, e.sched, 30*time.Second, "a replacement processor", func(hb *protocol.WorkerHeartbeat) bool {
		replaced := false
		for _, p := range hb.Processors {
			if int(p.PID) == pid {
				return false
			}
			replaced = replaced || p.Initialized
		}
		return replaced
	})
	res = e.call(pidFn)
	if res.Type != protocol.ResultSuccess {
		t.Fatalf("after idle death: %+v", res)
	}
	select {
	case m := <-e.sched.msgs:
		t.Fatalf("unexpected message %T", m)
	default:
	}
}

// srcDetach's detach returns its processor's pid and leaves a thread that,
// once the file go appears, shuts the processor's end of its channel
// (SHUT_WR: the agent reads the end of it; SHUT_RD: the agent's next write
// fails), waits for the agent to see it where it can tell, writes done,
// and keeps the process alive for 3 s more: a processor that is dying,
// idle, while the agent still takes it for alive.
const srcDetach = `import os, select, socket, threading, time
def detach(how, folder):
    def later():
        while not os.path.exists(os.path.join(folder, "go")):
            time.sleep(0.01)
        end = socket.socket(fileno=os.dup(3))
        end.shutdown(socket.SHUT_WR if how == "wr" else socket.SHUT_RD)
        if how == "wr":
            watch = select.poll()
            watch.register(3, select.POLLIN)
            watch.poll(20000)  # the agent closed its end
        open(os.path.join(folder, "done"), "w").close()
        time.sleep(3)
    threading.Thread(target=later).start()
    return os.getpid()
`

// A task handed to a processor that is gone without the agent knowing yet
// (its channel closed, or the write of the task failed) never ran there:
// it must run on the next processor, not fail with ProcessorDiedError (as
// it did after a closed channel) or stay listed forever with no processor
// (as it did after a failed write).
func TestTaskSentToAGoneProcessorRunsOnTheNext(t *testing.T) {
	for _, how := range []string{"wr", "rd"} {
		t.Run(how, func(t *testing.T) {
			e := startWorker(t, nil)
			folder := t.TempDir()
			res := e.call(e.h.fn(srcDetach, "detach"), fmt.Sprintf("%q", how), fmt.Sprintf("%q", folder))
			var pid int
			if res.Type != protocol.ResultSuccess {
				t.Fatalf("detach: %+v", res)
			}
			if _, err := fmtSscan(e.h.result(res.Results[0]), &pid); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(folder, "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			wait.Until(t, 20*time.Second, "the processor to shut its channel", func() bool {
				_, err := os.Stat(filepath.Join(folder, "done"))
				return err == nil
			})
			res = e.call(e.h.fn("import os\ndef pid():\n    return os.getpid()\n", "pid"))
			if res.Type != protocol.ResultSuccess {
				t.Fatalf("the task sent to the gone processor: %+v", res)
			}
			var next int
			if _, err := fmtSscan(e.h.result(res.Results[0]), &next); err != nil {
				t.Fatal(err)
			}
			if next == pid {
				t.Fatalf("the task ran on the processor %d that had shut its channel", pid)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	e := startWorker(t, nil)
	sleep := e.h.fn("import time\ndef sleep(s):\n    time.sleep(s)\n    return s\n", "sleep")
	// flagged writes a file once it runs, so the test knows the task started
	// instead of guessing with a sleep.
	flagged := e.h.fn("import time\ndef flagged(path, s):\n    open(path, 'w').close()\n    time.sleep(s)\n    return s\n", "flagged")
	dir := t.TempDir()
	started := func(name string) string { return filepath.Join(dir, name) }

	running := e.h.task(flagged, 0, e.h.arg(pyStr(started("running"))), e.h.arg("2"))
	queued := e.h.task(sleep, 0, e.h.arg("0"))
	e.sched.send(running)
	e.sched.send(queued)
	waitForFile(t, started("running"), 30*time.Second)

	e.sched.send(&protocol.TaskCancel{TaskID: queued.TaskID})
	if c := e.sched.next(10 * time.Second).(*protocol.TaskCancelConfirm); c.Type != protocol.CancelConfirmCanceled {
		t.Fatalf("queued cancel: %+v", c)
	}
	e.sched.send(&protocol.TaskCancel{TaskID: running.TaskID})
	if c := e.sched.next(10 * time.Second).(*protocol.TaskCancelConfirm); c.Type != protocol.CancelConfirmFailed {
		t.Fatalf("non-force cancel: %+v", c)
	}
	// Not forced: it keeps running and completes.
	if res := e.sched.result(running.TaskID, 20*time.Second); res.Type != protocol.ResultSuccess {
		t.Fatalf("after non-force cancel: %+v", res)
	}
	e.sched.send(&protocol.TaskCancel{TaskID: []byte("0123456789abcdef")})
	if c := e.sched.next(10 * time.Second).(*protocol.TaskCancelConfirm); c.Type != protocol.CancelConfirmNotFound {
		t.Fatalf("unknown cancel: %+v", c)
	}

	long := e.h.task(flagged, 0, e.h.arg(pyStr(started("long"))), e.h.arg("60"))
	e.sched.send(long)
	waitForFile(t, started("long"), 30*time.Second)
	e.sched.send(&protocol.TaskCancel{TaskID: long.TaskID, Force: true})
	if c := e.sched.next(10 * time.Second).(*protocol.TaskCancelConfirm); c.Type != protocol.CancelConfirmCanceled {
		t.Fatalf("force cancel: %+v", c)
	}
	next := e.h.task(sleep, 0, e.h.arg("0"))
	e.sched.send(next)
	if res := e.sched.result(next.TaskID, 20*time.Second); res.Type != protocol.ResultSuccess {
		t.Fatalf("after force cancel: %+v", res)
	}
}

// srcParent signals that it runs (file started), then spins (CPU-bound, so a
// soft suspension takes effect at once) until the file release exists. It
// returns whether the file childDone existed when it saw release: a parent
// that was really paused while the child ran can only see release after the
// child finished. It also writes after, if given, once released.
const srcParent = "import os, time\ndef parent(started, release, child_done, after):\n    open(started, 'w').close()\n    end = time.time() + 60\n    n = 0\n    while not os.path.exists(release):\n        n += 1\n        if time.time() > end:\n            return 'parent-timeout'\n    if after:\n        open(after, 'w').close()\n    return 'parent-after-child' if os.path.exists(child_done) else 'parent-before-child'\n"

// srcChild signals that it runs, waits (bounded) for release, then writes
// done and returns.
const srcChild = "import os, time\ndef child(started, release, done):\n    open(started, 'w').close()\n    end = time.time() + 60\n    while not os.path.exists(release):\n        if time.time() > end:\n            return 'child-timeout'\n        time.sleep(0.01)\n    open(done, 'w').close()\n    return 'child'\n"

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// suspendedHeartbeat holds when the worker reports a suspended processor
// still bound to its task, next to another one running a task.
func suspendedHeartbeat(hb *protocol.WorkerHeartbeat) bool {
	suspended, running := false, false
	for _, p := range hb.Processors {
		suspended = suspended || (p.Suspended && p.HasTask)
		running = running || (!p.Suspended && p.HasTask)
	}
	return suspended && running
}

func testSuspension(t *testing.T, hard bool) {
	e := startWorker(t, func(c *Config) { c.HardSuspend = hard })
	dir := t.TempDir()
	f := func(name string) string { return filepath.Join(dir, name) }
	parent := e.h.fn(srcParent, "parent")
	child := e.h.fn(srcChild, "child")

	// The parent runs (and cannot finish by itself) when the higher
	// priority child arrives: the child can only run if the parent is
	// suspended.
	p := e.h.task(parent, 1, e.h.arg(pyStr(f("p-started"))), e.h.arg(pyStr(f("p-release"))), e.h.arg(pyStr(f("c-done"))), e.h.arg("None"))
	e.sched.send(p)
	waitForFile(t, f("p-started"), 30*time.Second)
	c := e.h.task(child, 2, e.h.arg(pyStr(f("c-started"))), e.h.arg(pyStr(f("c-release"))), e.h.arg(pyStr(f("c-done"))))
	e.sched.send(c)
	waitForFile(t, f("c-started"), 30*time.Second)
	waitForHeartbeat(t, e.sched, 30*time.Second, "a suspended processor", suspendedHeartbeat)
	// Release the parent first: if it were not really paused it would see
	// this at once, before the child is released and done.
	touch(t, f("p-release"))
	touch(t, f("c-release"))
	var order []string
	for len(order) < 2 {
		if m, ok := e.sched.next(30 * time.Second).(*protocol.TaskResult); ok {
			if m.Type != protocol.ResultSuccess {
				t.Fatalf("result %+v", m)
			}
			order = append(order, e.h.result(m.Results[0]))
		}
	}
	if got, want := strings.Join(order, ","), "'child','parent-after-child'"; got != want {
		t.Fatalf("order %s, want %s", got, want)
	}

	// A force-cancelled suspended task does not run again: p2 writes
	// p2-after as soon as it continues past its release.
	p2 := e.h.task(parent, 1, e.h.arg(pyStr(f("p2-started"))), e.h.arg(pyStr(f("p2-release"))), e.h.arg(pyStr(f("c2-done"))), e.h.arg(pyStr(f("p2-after"))))
	e.sched.send(p2)
	waitForFile(t, f("p2-started"), 30*time.Second)
	if err := os.Remove(f("p2-started")); err != nil { // to see a restart too
		t.Fatal(err)
	}
	c2 := e.h.task(child, 2, e.h.arg(pyStr(f("c2-started"))), e.h.arg(pyStr(f("c2-release"))), e.h.arg(pyStr(f("c2-done"))))
	e.sched.send(c2)
	waitForFile(t, f("c2-started"), 30*time.Second)
	e.sched.send(&protocol.TaskCancel{TaskID: p2.TaskID, Force: true})
	if m, ok := e.sched.next(30 * time.Second).(*protocol.TaskCancelConfirm); !ok || m.Type != protocol.CancelConfirmCanceled || string(m.TaskID) != string(p2.TaskID) {
		t.Fatalf("cancel of suspended: %#v", m)
	}
	touch(t, f("p2-release"))
	touch(t, f("c2-release"))
	// A lower priority task after the child: were p2 still queued for
	// resumption (or again), it would run before this one finishes.
	echo := e.h.fn("def echo(x):\n    return x\n", "echo")
	last := e.h.task(echo, 0, e.h.arg("'last'"))
	e.sched.send(last)
	var got []string
	for len(got) < 2 {
		switch m := e.sched.next(30 * time.Second).(type) {
		case *protocol.TaskResult:
			if string(m.TaskID) == string(p2.TaskID) {
				t.Fatalf("the force-cancelled suspended task ran again: result %s", m.Type)
			}
			if string(m.TaskID) != string(c2.TaskID) && string(m.TaskID) != string(last.TaskID) {
				t.Fatalf("unexpected result for %x", m.TaskID)
			}
			got = append(got, e.h.result(m.Results[0]))
		case *protocol.ObjectInstruction:
		default:
			t.Fatalf("unexpected %T after cancel", m)
		}
	}
	if strings.Join(got, ",") != "'child','last'" {
		t.Fatalf("results after cancel %v", got)
	}
	for _, name := range []string{"p2-after", "p2-started"} {
		if _, err := os.Stat(f(name)); err == nil {
			t.Fatalf("the force-cancelled suspended task ran again (%s written)", name)
		}
	}
}

func TestSoftSuspension(t *testing.T) { testSuspension(t, false) }
func TestHardSuspension(t *testing.T) { testSuspension(t, true) }

func TestDeathTimeout(t *testing.T) {
	e := startWorker(t, func(c *Config) { c.DeathTimeout = 2 * time.Second })
	e.sched.mu.Lock()
	e.sched.echo = false
	e.sched.mu.Unlock()
	start := time.Now()
	err, ended := e.agent.Ended(15 * time.Second)
	if !ended {
		t.Fatal("worker did not exit on death timeout")
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("exited after %s", d)
	}
	// It said goodbye.
	for {
		select {
		case m := <-e.sched.msgs:
			if _, ok := m.(*protocol.DisconnectRequest); ok {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no DisconnectRequest")
		}
	}
}

func TestSchedulerShutdownStopsWorker(t *testing.T) {
	e := startWorker(t, nil)
	<-e.sched.heartbeat
	e.sched.send(&protocol.ClientDisconnect{Type: protocol.DisconnectShutdown})
	err, ended := e.agent.Ended(15 * time.Second)
	if !ended {
		t.Fatal("worker did not stop on shutdown")
	}
	if err != nil {
		t.Fatal(err)
	}
}
