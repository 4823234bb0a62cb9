package worker

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
	"github.com/opengris/scaler/internal/scalertest/freeport"
	"github.com/opengris/scaler/internal/scalertest/procs"
	"github.com/opengris/scaler/internal/scalertest/programs"
	"github.com/opengris/scaler/internal/scalertest/syncbuf"
)

// Integration tests: the real scheduler (in-process), the real scaler
// binary running "scaler cluster" with worker processes, and real Python
// processors.

// cluster is a running "scaler cluster" process.
type cluster struct {
	t    testing.TB
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	err  error
}

func startCluster(t testing.TB, args ...string) *cluster {
	python := programs.Python(t)
	bin := programs.Scaler(t)
	all := append([]string{"cluster", "--python", python, "-hi", "1", "-ll", "INFO"}, args...)
	cmd := exec.Command(bin, all...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("cluster did not stop")
		}
		if t.Failed() {
			t.Logf("cluster output:\n%s", out.String())
		}
	})
	return c
}

func (c *cluster) wait(d time.Duration) (exited bool) {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// terminate sends the cluster SIGTERM and fails the test unless it exits
// with status 0 within d.
func (c *cluster) terminate(t *testing.T, d time.Duration) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if !c.wait(d) {
		t.Fatalf("cluster did not exit within %s of SIGTERM", d)
	}
	if c.err != nil {
		t.Errorf("cluster exit after SIGTERM: %v", c.err)
	}
}

// startSchedulerAndClient starts the scheduler and a registered Go client
// with a task helper sharing its identity.
func startSchedulerAndClient(t *testing.T, mod func(*config.Scheduler)) (*scalertest.Scheduler, *scalertest.Client, *helper) {
	python := programs.Python(t)
	s := scalertest.StartScheduler(t, mod)
	c, err := scalertest.NewClient(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := newHelperFor(t, python, s.StorageAddr(), c.ID)
	return s, c, h
}

func awaitResult(t *testing.T, c *scalertest.Client, id []byte, d time.Duration) *protocol.TaskResult {
	t.Helper()
	m, err := c.Expect(d, func(m protocol.Message) bool {
		r, ok := m.(*protocol.TaskResult)
		return ok && bytes.Equal(r.TaskID, id)
	})
	if err != nil {
		t.Fatalf("waiting for the result of %x: %v", id, err)
	}
	return m.(*protocol.TaskResult)
}

// expectGone fails the test for each of pids still running 3 s from now
// (a zombie counts as gone).
func expectGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for _, p := range pids {
		for procs.Alive(p) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if procs.Alive(p) {
			t.Errorf("pid %d (%s) still running after the cluster exited", p, procs.Cmdline(p))
		}
	}
}

func TestClusterRunsTasks(t *testing.T) {
	s, c, h := startSchedulerAndClient(t, nil)
	dir := t.TempDir()
	mod := "import os\nCALLS = []\ndef setup(tag, n=0):\n    CALLS.append((tag, n))\n    open(os.path.join(" + pyStr(dir) + ", 'preload-%d' % os.getpid()), 'a').write('%s %d\\n' % (tag, n))\n"
	if err := os.WriteFile(filepath.Join(dir, "clusterpreload.py"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", dir)
	cl := startCluster(t, "-n", "2", s.Addr(), "--preload", "clusterpreload:setup('prod', n=7)",
		"-tts", "2", "--worker-names", "alpha,beta", "--per-worker-capabilities", "linux,cpu=8")

	add := h.fn(srcAdd, "add")
	check := h.fn("def check(x):\n    import clusterpreload\n    return (x, clusterpreload.CALLS)\n", "check")
	var ids [][]byte
	for i := 0; i < 20; i++ {
		task := h.task(check, 0, h.arg(strconv.Itoa(i)))
		task.Capabilities = map[string]int64{"linux": -1}
		ids = append(ids, task.TaskID)
		if err := c.Send(task); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		res := awaitResult(t, c, id, 30*time.Second)
		if res.Type != protocol.ResultSuccess {
			t.Fatalf("task %d: %+v", i, res)
		}
		if got, want := h.result(res.Results[0]), fmt.Sprintf("(%d, [('prod', 7)])", i); got != want {
			t.Fatalf("task %d: %s, want %s", i, got, want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "preload-*"))
	if len(files) < 1 || len(files) > 2 {
		t.Errorf("preload files %v: want one per processor", files)
	}
	for _, f := range files {
		if b, _ := os.ReadFile(f); string(b) != "prod 7\n" {
			t.Errorf("%s: %q (preload must run once per processor)", f, b)
		}
	}

	// Task timeout (-tts 2).
	sleep := h.fn("import time\ndef sleep(s):\n    time.sleep(s)\n    return s\n", "sleep")
	task := h.task(sleep, 0, h.arg("60"))
	_ = c.Send(task)
	if res := awaitResult(t, c, task.TaskID, 20*time.Second); res.Type != protocol.ResultFailedTimeout {
		t.Fatalf("timeout: %+v", res)
	}

	// A processor crash mid-task, then a task that succeeds.
	crash := h.fn("import os\ndef crash():\n    os._exit(1)\n", "crash")
	task = h.task(crash, 0)
	_ = c.Send(task)
	if res := awaitResult(t, c, task.TaskID, 20*time.Second); res.Type != protocol.ResultFailedProcessorDied {
		t.Fatalf("crash: %+v", res)
	}
	for i := 0; i < 4; i++ {
		task = h.task(add, 0, h.arg("2"), h.arg("3"))
		_ = c.Send(task)
		if res := awaitResult(t, c, task.TaskID, 20*time.Second); res.Type != protocol.ResultSuccess {
			t.Fatalf("after crash: %+v", res)
		}
	}

	// Cancels of a running task: without force it keeps running, with force it stops.
	// flagged writes a file once it runs, so cancels are sent to a task
	// known to be running rather than after a guessed delay.
	flagged := h.fn("import time\ndef flagged(path, s):\n    open(path, 'w').close()\n    time.sleep(s)\n    return s\n", "flagged")
	marker := filepath.Join(dir, "running-1")
	task = h.task(flagged, 0, h.arg(pyStr(marker)), h.arg("1")) // under the 2 s task timeout
	_ = c.Send(task)
	waitForFile(t, marker, 30*time.Second)
	_ = c.Send(&protocol.TaskCancel{TaskID: task.TaskID})
	if res := awaitResult(t, c, task.TaskID, 20*time.Second); res.Type != protocol.ResultSuccess {
		t.Fatalf("non-force cancel: %+v", res)
	}
	marker = filepath.Join(dir, "running-2")
	task = h.task(flagged, 0, h.arg(pyStr(marker)), h.arg("60"))
	_ = c.Send(task)
	waitForFile(t, marker, 30*time.Second)
	_ = c.Send(&protocol.TaskCancel{TaskID: task.TaskID, Force: true})
	m, err := c.Expect(20*time.Second, func(m protocol.Message) bool {
		switch m := m.(type) {
		case *protocol.TaskCancelConfirm:
			return bytes.Equal(m.TaskID, task.TaskID)
		case *protocol.TaskResult:
			return bytes.Equal(m.TaskID, task.TaskID)
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	if cc, ok := m.(*protocol.TaskCancelConfirm); !ok || cc.Type != protocol.CancelConfirmCanceled {
		t.Fatalf("force cancel: %#v", m)
	}

	// SIGTERM stops everything and leaves no process behind.
	pids := procs.Descendants(cl.cmd.Process.Pid)
	if len(pids) < 4 { // 2 workers + at least 2 processors
		t.Fatalf("descendants %v: want workers and processors", pids)
	}
	start := time.Now()
	cl.terminate(t, 10*time.Second)
	expectGone(t, pids)
	t.Logf("cluster stopped in %s", time.Since(start))
	out := cl.out.String()
	for _, want := range []string{"cluster started 2 workers", "|Worker|alpha|", "|Worker|beta|", "processor died while running a task"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// A task that submits a child task and waits for it, on a single worker:
// the child (priority + 1) suspends the parent and runs in a fresh
// processor, then the parent resumes.
// A cluster given the scheduler's local ipc:// address (what
// SchedulerClusterCombo does) runs tasks for a client connected over TCP,
// with arguments fetched from object storage.
func TestClusterOverLocalAddress(t *testing.T) {
	local := "ipc://" + t.TempDir() + "/scheduler.sock"
	_, c, h := startSchedulerAndClient(t, func(cfg *config.Scheduler) { cfg.LocalAddress = local })
	startCluster(t, "-n", "1", local)
	add := h.fn(srcAdd, "add")
	for i := 0; i < 3; i++ {
		task := h.task(add, 0, h.arg(strconv.Itoa(i)), h.arg("10"))
		if err := c.Send(task); err != nil {
			t.Fatal(err)
		}
		res := awaitResult(t, c, task.TaskID, 30*time.Second)
		if res.Type != protocol.ResultSuccess {
			t.Fatalf("task %d: %+v", i, res)
		}
		if got, want := h.result(res.Results[0]), strconv.Itoa(i+10); got != want {
			t.Fatalf("task %d: %s, want %s", i, got, want)
		}
	}
}

func TestNestedTaskOnSingleWorker(t *testing.T) {
	for _, hard := range []bool{false, true} {
		t.Run(fmt.Sprintf("hard=%v", hard), func(t *testing.T) {
			s, c, h := startSchedulerAndClient(t, nil)
			args := []string{"-n", "1", s.Addr()}
			if hard {
				args = append(args, "--hard-processor-suspend")
			}
			startCluster(t, args...)
			parent := h.fn(nestedParentSrc, "parent")
			task := h.task(parent, 0, h.arg(strconv.Quote(s.Addr())))
			_ = c.Send(task)
			res := awaitResult(t, c, task.TaskID, 40*time.Second)
			if res.Type != protocol.ResultSuccess {
				t.Fatalf("parent: %+v", res)
			}
			if got := h.result(res.Results[0]); got != "'parent got child at priority 1'" {
				t.Fatalf("parent returned %s", got)
			}
		})
	}
}

const nestedParentSrc = `
def parent(sched_addr):
    import cloudpickle, zmq
    from scaler.protocol import ClientHeartbeat, ObjectInstruction, ObjectMetadata, Task, TaskResult, decode, encode
    from scaler.io import ObjectStorageClient, client_id, new_object_id, new_task_id, serializer_object_id
    from scaler.io.storage import address_string
    from scaler.worker.processor import current_task

    class Ser:
        serialize = staticmethod(cloudpickle.dumps)
        deserialize = staticmethod(cloudpickle.loads)

    me = current_task()
    cid = client_id()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, cid)
    sock.connect(sched_addr)
    sock.send(encode(ClientHeartbeat()))
    echo = decode(sock.recv())
    st = ObjectStorageClient(address_string(echo.object_storage.host, echo.object_storage.port))
    st.set_object(serializer_object_id(cid), cloudpickle.dumps(Ser()))
    fid = new_object_id(cid)
    st.set_object(fid, cloudpickle.dumps(lambda: "child at priority %d" % current_task().priority))
    tid = new_task_id()
    # Announced before the task that names it: the scheduler refuses tasks naming unknown objects.
    sock.send(encode(ObjectInstruction(type=0, object_user=cid, metadata=ObjectMetadata(object_ids=[fid]))))
    sock.send(encode(Task(task_id=tid, source=cid, func_object_id=fid, priority=me.priority + 1)))
    while True:
        m = decode(sock.recv())
        if isinstance(m, TaskResult) and m.task_id == tid:
            break
    # A small result without keep_result comes inline only (docs/protocol.md 7.1).
    value = cloudpickle.loads(st.get_object(m.results[0]) if m.results else m.inline)
    sock.close(0)
    return "parent got " + value
`

func TestClusterPreloadFailureExits(t *testing.T) {
	s, _, _ := startSchedulerAndClient(t, nil)
	cl := startCluster(t, "-n", "2", s.Addr(), "--preload", "missing_module_abc:init(1)")
	if !cl.wait(20 * time.Second) {
		t.Fatal("cluster with a failing preload did not exit")
	}
	if cl.err == nil {
		t.Fatal("cluster exited 0 after a failing preload")
	}
	out := cl.out.String()
	if !strings.Contains(out, "missing_module_abc") || !strings.Contains(out, "ModuleNotFoundError") {
		t.Errorf("output does not name the module and the error:\n%s", out)
	}
}

func TestClusterDeathTimeout(t *testing.T) {
	addr := freeport.Addr(t) // nothing listens there: the workers never hear from a scheduler
	start := time.Now()
	cl := startCluster(t, "-n", "2", addr, "-ds", "2")
	if !cl.wait(20 * time.Second) {
		t.Fatal("workers did not exit on the death timeout")
	}
	if cl.err != nil {
		t.Errorf("cluster exit: %v\n%s", cl.err, cl.out.String())
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("exited after only %s", d)
	}
}

func TestSchedulerShutdownStopsCluster(t *testing.T) {
	s, c, h := startSchedulerAndClient(t, func(cfg *config.Scheduler) { cfg.Protected = false })
	cl := startCluster(t, "-n", "2", s.Addr())
	task := h.task(h.fn(srcAdd, "add"), 0, h.arg("1"), h.arg("1"))
	_ = c.Send(task)
	awaitResult(t, c, task.TaskID, 30*time.Second)
	pids := procs.Descendants(cl.cmd.Process.Pid)
	_ = c.Send(&protocol.ClientDisconnect{Type: protocol.DisconnectShutdown})
	if !cl.wait(15 * time.Second) {
		t.Fatal("cluster did not exit after the scheduler's shutdown")
	}
	expectGone(t, pids)
}

// TestMain removes the scaler binary the tests built.
func TestMain(m *testing.M) { programs.Main(m) }

// waitForFile waits until path exists (a task signalling that it runs).
func waitForFile(t *testing.T, path string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written within %v: the task did not start", path, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
