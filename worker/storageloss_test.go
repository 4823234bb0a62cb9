package worker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/freeport"
	"github.com/opengris/scaler/internal/scalertest/procs"
	"github.com/opengris/scaler/internal/scalertest/programs"
	"github.com/opengris/scaler/internal/scalertest/syncbuf"
)

// startStorageProcess runs "scaler object_storage_server" on a free port of
// 127.0.0.1 and waits until it accepts connections. It is killed with the
// test at the latest.
func startStorageProcess(t *testing.T) (addr string, cmd *exec.Cmd, out *syncbuf.Buffer) {
	t.Helper()
	addr = freeport.Addr(t)
	hostPort := strings.TrimPrefix(addr, "tcp://")
	out = &syncbuf.Buffer{}
	cmd = exec.Command(programs.Scaler(t), "object_storage_server", addr, "-ll", "INFO")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", hostPort, time.Second)
		if err == nil {
			_ = c.Close()
			return addr, cmd, out
		}
		select {
		case <-done:
			t.Fatalf("object storage server exited at start-up:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("object storage server not listening on %s within 20s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An external object storage server (the scheduler's -osa) dies: the
// worker, whose processor is blocked in a get at that moment, exits with a
// non-zero status within seconds, says why in one error line naming the
// storage address, and leaves no processor behind; the cluster starts a
// new worker in its place (the storage may come back). The worker learns
// the address from the scheduler's echo, or has it configured (-osa).
func TestStorageLossStopsWorker(t *testing.T) {
	for _, mode := range []string{"learnt", "configured"} {
		t.Run(mode, func(t *testing.T) {
			storageAddr, storageCmd, storageOut := startStorageProcess(t)
			s, c, h := startSchedulerAndClient(t, func(cfg *config.Scheduler) { cfg.ObjectStorageAddress = storageAddr })
			if s.StorageAddr() != storageAddr {
				t.Fatalf("scheduler storage %s, want %s", s.StorageAddr(), storageAddr)
			}
			args := []string{"-n", "1", s.Addr()}
			if mode == "configured" {
				args = append(args, "-osa", storageAddr)
			}
			cl := startCluster(t, args...)

			add := h.fn(srcAdd, "add")
			task := h.task(add, 0, h.arg("2"), h.arg("3"))
			_ = c.Send(task)
			if res := awaitResult(t, c, task.TaskID, 40*time.Second); res.Type != protocol.ResultSuccess {
				t.Fatalf("task before the loss: %+v", res)
			}

			// A task whose argument never appears: its processor blocks in
			// the get (the case that used to hang the worker for good).
			missing := append(append([]byte{}, add[:16]...), bytes.Repeat([]byte{0xee}, 16)...)
			blocked := h.task(add, 0, h.arg("1"), missing)
			_ = c.Send(blocked)

			pids := procs.Descendants(cl.cmd.Process.Pid)
			deadline := time.Now().Add(20 * time.Second)
			for !hasProcessor(pids) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				pids = procs.Descendants(cl.cmd.Process.Pid)
			}
			if len(pids) < 2 || !hasProcessor(pids) {
				t.Fatalf("descendants of the cluster %v: want the worker and a processor", pids)
			}
			time.Sleep(500 * time.Millisecond) // let the blocked task reach its get

			agents := agentPIDs(cl.cmd.Process.Pid)
			if len(agents) != 1 {
				t.Fatalf("agents %v, want one", agents)
			}
			_ = storageCmd.Process.Signal(syscall.SIGKILL)
			start := time.Now()
			for procs.Alive(agents[0]) && time.Since(start) < 10*time.Second {
				time.Sleep(20 * time.Millisecond)
			}
			if procs.Alive(agents[0]) {
				t.Fatalf("worker still running 10s after the object storage server was killed:\n%s", cl.out.String())
			}
			t.Logf("worker exited %s after the storage server was killed", time.Since(start).Round(time.Millisecond))
			expectGone(t, pids)
			for !strings.Contains(cl.out.String(), "restarting it in") && time.Since(start) < 20*time.Second {
				time.Sleep(20 * time.Millisecond)
			}
			if cl.wait(0) {
				t.Errorf("the cluster exited (%v) instead of restarting its worker", cl.err)
			}

			out := cl.out.String()
			var errLines []string
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "[EROR]") && strings.Contains(line, storageAddr) {
					errLines = append(errLines, line)
				}
			}
			if len(errLines) != 1 || !strings.Contains(errLines[0], "object storage") {
				t.Errorf("want exactly one error line naming %s, got %q", storageAddr, errLines)
			}
			if !strings.Contains(out, "died (exit status 1 (failed))") || !strings.Contains(out, "restarting it in 500ms") {
				t.Errorf("the cluster does not report the worker's non-zero exit and its restart")
			}
			if t.Failed() {
				t.Logf("cluster output:\n%s\nstorage output:\n%s", out, storageOut.String())
			}
		})
	}
}

func hasProcessor(pids []int) bool {
	for _, p := range pids {
		if strings.Contains(procs.Cmdline(p), "scaler.worker.processor") {
			return true
		}
	}
	return false
}

// runAgent runs Run in-process against sched; the result of Run arrives on
// the returned channel. The worker is cancelled with the test at the latest.
func runAgent(t *testing.T, sched *fakeScheduler, mod func(*Config)) (chan error, context.CancelFunc) {
	return runAgentLogging(t, sched, mod, testWriter{t})
}

// runAgentLogging is runAgent with the worker's log written to w.
func runAgentLogging(t *testing.T, sched *fakeScheduler, mod func(*Config), w io.Writer) (chan error, context.CancelFunc) {
	cfg := Config{
		Name:              "test",
		SchedulerAddress:  sched.ep.Addr(),
		HeartbeatInterval: time.Second,
		DeathTimeout:      60 * time.Second,
		Python:            programs.Python(t),
		KillDelay:         time.Second,
		LoggingLevel:      "WARNING",
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := logging.ForTest("worker", w)
	go func() { done <- Run(ctx, cfg, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			done <- err
		case <-time.After(15 * time.Second):
			t.Error("worker did not stop")
		}
	})
	return done, cancel
}

// In-process: Run returns ErrStorageLost naming the address after telling
// the scheduler it leaves.
func TestAgentStopsOnStorageLoss(t *testing.T) {
	python := programs.Python(t)
	addr, stopStorage := startStoppableStorage(t)
	sched := newFakeScheduler(t, addr)
	h := newHelper(t, python, addr)
	done, _ := runAgent(t, sched, nil)
	task := h.task(h.fn(srcAdd, "add"), 0, h.arg("1"), h.arg("2"))
	sched.send(task)
	if res := sched.result(task.TaskID, 30*time.Second); res.Type != protocol.ResultSuccess {
		t.Fatalf("result %+v", res)
	}

	stopStorage()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStorageLost) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("Run returned %v, want ErrStorageLost naming %s", err, addr)
		}
		done <- err
	case <-time.After(15 * time.Second):
		t.Fatal("worker still running 15s after its object storage stopped")
	}
	for {
		m := sched.next(5 * time.Second)
		if _, ok := m.(*protocol.DisconnectRequest); ok {
			break
		}
	}
}

// A storage server that was never reachable is not a loss: the worker
// keeps running until it is stopped, and says once, after storageWarnAfter,
// that it cannot reach the server.
func TestAgentKeepsRunningWithUnreachableStorage(t *testing.T) {
	addr := freeport.Addr(t)
	sched := newFakeScheduler(t, addr)
	out := &syncbuf.Buffer{}
	done, cancel := runAgentLogging(t, sched, func(c *Config) { c.ObjectStorageAddress = addr },
		io.MultiWriter(out, testWriter{t}))
	select {
	case err := <-done:
		t.Fatalf("worker stopped with an unreachable storage: %v", err)
	case <-time.After(storageWarnAfter + 1500*time.Millisecond):
	}
	var warnings []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "not reachable") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "[WARN]") || !strings.Contains(warnings[0], addr) {
		t.Errorf("want one [WARN] line naming %s after %s; got %q", addr, storageWarnAfter, warnings)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel", err)
		}
		done <- err
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not stop")
	}
}
