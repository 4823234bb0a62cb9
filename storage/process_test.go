package storage

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/internal/scalertest/syncbuf"
)

// The tests below re-execute the test binary as a stand-alone object storage
// server process: with GO_WANT_HELPER_PROCESS=1, TestHelperProcess runs a
// small main (what the CLI command does) instead of a test.

const helperEnv = "GO_WANT_HELPER_PROCESS"

// TestHelperProcess is not a real test: it is the child process's main.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process only")
	}
	os.Exit(helperMain())
}

func helperMain() int {
	log := logging.ForTest("object_storage_server", os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := NewServer(Config{Address: "tcp://127.0.0.1:0"}, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	fmt.Println(srv.Addr()) // the parent reads the address from stdout
	if err := srv.Run(ctx); err != nil {
		log.Error().Err(err).Msg("failed")
		return 1
	}
	return 0
}

// helperProcess is a running child server.
type helperProcess struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncbuf.Buffer
	exited chan error
}

func startHelper(tb testing.TB) *helperProcess {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	h := &helperProcess{cmd: cmd, stderr: new(syncbuf.Buffer), exited: make(chan error, 1)}
	cmd.Stderr = h.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-h.exited
	})
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r)
		h.exited <- cmd.Wait()
	}()
	select {
	case h.addr = <-lines:
	case <-time.After(testTimeout):
		tb.Fatal("helper process did not report its address")
	}
	if !strings.HasPrefix(h.addr, "tcp://") {
		tb.Fatalf("helper process printed %q; stderr:\n%s", h.addr, h.stderr)
	}
	return h
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	h := startHelper(t)
	c := dial(t, h.addr)
	ctx := testCtx(t)
	id := oid("before-term")
	if err := c.Set(ctx, id, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A parked get must not keep the server from stopping.
	parked := c.GetAsync(oid("never"), 0)

	start := time.Now()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.exited:
		h.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, h.stderr)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5 s after SIGTERM; stderr:\n%s", h.stderr)
	}
	t.Logf("exited 0 after %v", time.Since(start))
	logs := h.stderr.String()
	for _, want := range []string{"object_storage_server: listening on tcp://127.0.0.1:", "object_storage_server: stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	select {
	case r := <-parked:
		t.Fatalf("parked get answered: %+v", r)
	default:
	}
}

// residentBytes is a process's resident set size, from /proc.
func residentBytes(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		tb.Fatal(err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		tb.Fatal(err)
	}
	return resident * int64(os.Getpagesize())
}

// Deleted objects give their memory back to the system, even when a live
// object sits above them in the heap (glibc alone would keep it).
func TestDeletedObjectsLeaveResidentMemory(t *testing.T) {
	h := startHelper(t)
	c := dial(t, h.addr)
	ctx := testCtx(t)
	const count, size = 8, 32 << 20
	payload := make([]byte, size)
	for i := 0; i < count; i++ {
		payload[0] = byte(i)
		if err := c.Set(ctx, oid(fmt.Sprintf("big-%d", i)), payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Set(ctx, oid("small-on-top"), []byte("keeps the heap's top in use")); err != nil {
		t.Fatal(err)
	}
	pid := h.cmd.Process.Pid
	peak := residentBytes(t, pid)
	if peak < count*size {
		t.Fatalf("resident %d MiB with %d MiB stored", peak>>20, count*size>>20)
	}
	for i := 0; i < count; i++ {
		if _, err := c.Delete(ctx, oid(fmt.Sprintf("big-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3*trimTick + 2*time.Second)
	for {
		now := residentBytes(t, pid)
		if now < peak-count*size/2 {
			t.Logf("resident %d MiB at the peak, %d MiB after the deletes", peak>>20, now>>20)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resident %d MiB at the peak, still %d MiB after the deletes", peak>>20, now>>20)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, err := c.Get(ctx, oid("small-on-top")); err != nil || string(got) != "keeps the heap's top in use" {
		t.Fatalf("the remaining object: %q, %v", got, err)
	}
}
