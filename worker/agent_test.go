package worker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
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
	e.sched.send(task)
	res = e.sched.result(task.TaskID, 10*time.Second)
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
	slow := e.h.fn("import time\ndef slow():\n    time.sleep(0.5)\n    return 'slow'\n", "slow")
	echo := e.h.fn("def echo(x):\n    print('out', x)\n    return x\n", "echo")
	first := e.h.task(slow, 5)
	e.sched.send(first)
	time.Sleep(300 * time.Millisecond) // let it start (same priority: no suspension)
	low := e.h.task(echo, 5, e.h.arg("'low'"))
	high := e.h.task(echo, 5, e.h.arg("'high'"))
	high.StreamOutput = true
	e.sched.send(low)
	e.sched.send(high)
	var order []string
	var logs []string
	for len(order) < 3 {
		switch m := e.sched.next(20 * time.Second).(type) {
		case *protocol.TaskResult:
			order = append(order, e.h.result(m.Results[0]))
		case *protocol.TaskLog:
			logs = append(logs, m.Content)
		}
	}
	if strings.Join(order, ",") != "'slow','low','high'" {
		t.Errorf("order %v", order)
	}
	if strings.Join(logs, "") != "out high\n" {
		t.Errorf("logs %q", logs)
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
		e.sched.send(task)
		res := e.sched.result(task.TaskID, 20*time.Second)
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
	select {
	case err := <-e.done:
		e.done <- err
		if !errors.Is(err, ErrPreload) || !strings.Contains(err.Error(), "no_such_module_xyz") {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not stop after a failing preload")
	}
}

func TestTaskTimeout(t *testing.T) {
	e := startWorker(t, func(c *Config) { c.TaskTimeout = time.Second })
	sleep := e.h.fn("import time\ndef sleep(s):\n    time.sleep(s)\n    return s\n", "sleep")
	task := e.h.task(sleep, 0, e.h.arg("30"))
	start := time.Now()
	e.sched.send(task)
	res := e.sched.result(task.TaskID, 20*time.Second)
	if res.Type != protocol.ResultFailedTimeout || len(res.Results) != 0 {
		t.Fatalf("result %+v", res)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout took %s", d)
	}
	// The replacement processor runs the next task.
	task = e.h.task(sleep, 0, e.h.arg("0"))
	e.sched.send(task)
	if res := e.sched.result(task.TaskID, 20*time.Second); res.Type != protocol.ResultSuccess {
		t.Fatalf("after timeout: %+v", res)
	}
}

func TestProcessorCrashMidTask(t *testing.T) {
	e := startWorker(t, nil)
	crash := e.h.fn("import os\ndef crash():\n    os._exit(3)\n", "crash")
	task := e.h.task(crash, 0)
	e.sched.send(task)
	res := e.sched.result(task.TaskID, 20*time.Second)
	if res.Type != protocol.ResultFailedProcessorDied || !strings.Contains(res.Message, "exit status 3") {
		t.Fatalf("result %+v", res)
	}
	fn := e.h.fn(srcAdd, "add")
	task = e.h.task(fn, 0, e.h.arg("1"), e.h.arg("2"))
	e.sched.send(task)
	res = e.sched.result(task.TaskID, 20*time.Second)
	if res.Type != protocol.ResultSuccess || e.h.result(res.Results[0]) != "3" {
		t.Fatalf("after crash: %+v", res)
	}
}

func TestIdleProcessorDeathIsReplaced(t *testing.T) {
	e := startWorker(t, nil)
	pidFn := e.h.fn("import os\ndef pid():\n    return os.getpid()\n", "pid")
	task := e.h.task(pidFn, 0)
	e.sched.send(task)
	res := e.sched.result(task.TaskID, 20*time.Second)
	var pid int
	if _, err := fmtSscan(e.h.result(res.Results[0]), &pid); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	task = e.h.task(pidFn, 0)
	e.sched.send(task)
	res = e.sched.result(task.TaskID, 20*time.Second)
	if res.Type != protocol.ResultSuccess {
		t.Fatalf("after idle death: %+v", res)
	}
	select {
	case m := <-e.sched.msgs:
		t.Fatalf("unexpected message %T", m)
	default:
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

func testSuspension(t *testing.T, hard bool) {
	e := startWorker(t, func(c *Config) { c.HardSuspend = hard })
	// The parent spins (CPU-bound, so a soft suspension takes effect at once).
	parent := e.h.fn("import time\ndef parent(s):\n    end = time.time() + s\n    n = 0\n    while time.time() < end:\n        n += 1\n    return 'parent'\n", "parent")
	child := e.h.fn("import os\ndef child():\n    return 'child'\n", "child")
	p := e.h.task(parent, 1, e.h.arg("1.0"))
	e.sched.send(p)
	time.Sleep(400 * time.Millisecond)
	c := e.h.task(child, 2)
	e.sched.send(c)
	var order []string
	var parentRes *protocol.TaskResult
	for len(order) < 2 {
		if m, ok := e.sched.next(30 * time.Second).(*protocol.TaskResult); ok {
			order = append(order, e.h.result(m.Results[0]))
			if string(m.TaskID) == string(p.TaskID) {
				parentRes = m
			}
		}
	}
	if strings.Join(order, ",") != "'child','parent'" {
		t.Fatalf("order %v", order)
	}
	// The parent's CPU time stays about its own work: it did not spin while suspended.
	if parentRes.Profile.DurationS < 1.0 {
		t.Errorf("parent profile %+v", parentRes.Profile)
	}
	// A force-cancelled suspended task does not run again.
	p2 := e.h.task(parent, 1, e.h.arg("30"))
	e.sched.send(p2)
	time.Sleep(300 * time.Millisecond)
	c2 := e.h.task(parent, 2, e.h.arg("0.5"))
	e.sched.send(c2)
	time.Sleep(200 * time.Millisecond)
	e.sched.send(&protocol.TaskCancel{TaskID: p2.TaskID, Force: true})
	gotCancel, gotChild := false, false
	for !gotCancel || !gotChild {
		switch m := e.sched.next(30 * time.Second).(type) {
		case *protocol.TaskCancelConfirm:
			if m.Type != protocol.CancelConfirmCanceled {
				t.Fatalf("cancel of suspended: %+v", m)
			}
			gotCancel = true
		case *protocol.TaskResult:
			if string(m.TaskID) != string(c2.TaskID) {
				t.Fatalf("unexpected result for %x", m.TaskID)
			}
			gotChild = true
		}
	}
	select {
	case m := <-e.sched.msgs:
		if _, ok := m.(*protocol.ObjectInstruction); !ok {
			t.Fatalf("unexpected %T after cancel", m)
		}
	case <-time.After(500 * time.Millisecond):
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
	select {
	case err := <-e.done:
		e.done <- err
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not exit on death timeout")
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
	select {
	case err := <-e.done:
		e.done <- err
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not stop on shutdown")
	}
}
