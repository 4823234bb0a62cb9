package native

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/adapter"
	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/internal/scalertest/procs"
	"github.com/opengris/scaler/internal/scalertest/wait"
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
	code, out, err := tryPost(url, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// tryPost is post for goroutines other than the test's, which must not
// call t.Fatal.
func tryPost(url, body string) (int, map[string]any, error) {
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out, nil
}

const start = `{"action":"start_worker_group"}`

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.Until(t, 20*time.Second, what, cond)
}

// Concurrent starts never overshoot max_workers; a killed worker frees its
// slot but its group stays listed until shut down; Close stops every worker.
func TestLiveWorkersCount(t *testing.T) {
	a, url := newTestAdapter(t, 3)
	var wg sync.WaitGroup
	type result struct {
		code int
		err  error
	}
	results := make(chan result, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c, _, err := tryPost(url, start); results <- result{c, err} }()
	}
	wg.Wait()
	close(results)
	got := map[int]int{}
	for r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		got[r.code]++
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
		if procs.Alive(p) {
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

// A start whose request ended (the scheduler's webhook call timed out)
// does not leave a worker behind that nobody knows the group of: the start
// fails and the worker is stopped, its slot freed.
func TestStartAbandoned(t *testing.T) {
	a, _ := newTestAdapter(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if g, err := a.StartGroup(ctx); err == nil {
		t.Fatalf("a start with its request gone succeeded: %+v", g)
	}
	waitFor(t, "the abandoned worker to stop and free its slot", func() bool { return a.Live() == 0 && len(a.Groups()) == 0 })
}
