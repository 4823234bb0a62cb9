package native

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/adapter"
	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/logging"
)

// Stand-in worker: reads its configuration, then waits for SIGINT.
const standIn = `cat >/dev/null; trap 'exit 0' INT TERM; sleep 60 & wait`

func newTestAdapter(t *testing.T, maxWorkers int, command ...string) (*Adapter, string) {
	t.Helper()
	cfg := config.DefaultNativeWorkerAdapter()
	cfg.SchedulerAddress = "tcp://127.0.0.1:1"
	cfg.MaxWorkers = maxWorkers
	if len(command) == 0 {
		command = []string{"sh", "-c", standIn}
	}
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	log := logging.ForTest("adapter", w)
	a, err := New(context.Background(), cfg, Options{Command: command, Python: "python3", StopGrace: 3 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(adapter.Handler(a, log))
	t.Cleanup(func() { srv.Close(); a.Close() })
	return a, srv.URL + "/"
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

const start = `{"action":"start_worker_group"}`

func alive(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !bytes.Contains(st, []byte(") Z "))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Concurrent starts never overshoot max_workers; a killed worker frees its
// slot but its group stays listed until shut down; Close stops every worker.
func TestLiveWorkersCount(t *testing.T) {
	a, url := newTestAdapter(t, 3)
	var wg sync.WaitGroup
	codes := make(chan int, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c, _ := post(t, url, start); codes <- c }()
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[200] != 3 || got[429] != 7 {
		t.Fatalf("10 concurrent starts with max 3: %v", got)
	}
	gs := a.Groups()
	if err := syscall.Kill(gs[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed worker's slot", func() bool { return a.Live() == 2 })
	if c, _ := post(t, url, start); c != 200 {
		t.Fatalf("start after a death: %d", c)
	}
	if c, _ := post(t, url, start); c != 429 {
		t.Fatalf("start beyond max: %d", c)
	}
	if c, _ := post(t, url, `{"action":"shutdown_worker_group","worker_group_id":"`+gs[0].ID+`"}`); c != 200 {
		t.Fatalf("shutdown of the dead worker's group: %d", c)
	}
	var pids []int
	for _, g := range a.Groups() {
		pids = append(pids, g.PID)
	}
	a.Close()
	for _, p := range pids {
		if alive(p) {
			t.Fatalf("worker %d survived Close", p)
		}
	}
	if c, body := post(t, url, start); c != 500 || body["error"] == nil {
		t.Fatalf("start after Close: %d %v", c, body)
	}
}

// A worker that cannot be started is a 500 with the reason, and frees its slot.
func TestStartFailure(t *testing.T) {
	a, url := newTestAdapter(t, 1, "/nonexistent/scaler", "worker")
	c, body := post(t, url, start)
	if c != 500 || !strings.Contains(body["error"].(string), "nonexistent") {
		t.Fatalf("start with a missing binary: %d %v", c, body)
	}
	if a.Live() != 0 || len(a.Groups()) != 0 {
		t.Fatalf("failed start left live=%d groups=%v", a.Live(), a.Groups())
	}
}
