package metrics

import (
	"bufio"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
	"github.com/opengris/scaler/monitor/feed"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt from the rendered output")

var t0 = time.Unix(1_800_000_000, 0)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./monitor/metrics -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update and review the diff):\n%s", path, got)
	}
}

func sampleState() feed.State {
	counts := make([]protocol.TaskStateCount, protocol.NumTaskStates)
	for i := range counts {
		counts[i] = protocol.TaskStateCount{State: protocol.TaskState(i), Count: uint64(i+1) * 10}
	}
	return feed.State{
		Address:  "tcp://127.0.0.1:2347",
		Updated:  t0.Add(-1500 * time.Millisecond),
		Restarts: 2,
		Missed:   5,
		Status: &protocol.StateScheduler{
			Binder: protocol.BinderStatus{
				Received: []protocol.MessageCount{{Name: "TaskResult", Count: 900}, {Name: "WorkerHeartbeat", Count: 40}},
				Sent:     []protocol.MessageCount{{Name: "Task", Count: 901}},
			},
			Scheduler:      protocol.Resource{CPU: 250, RSS: 40 << 20},
			RSSFree:        8 << 30,
			Clients:        []protocol.ClientTaskCount{{Client: []byte("c1"), Tasks: 3}},
			ObjectCount:    12,
			TaskStates:     counts,
			MonitorDropped: 7,
			Workers: []protocol.WorkerStatus{{
				WorkerID: []byte("123|Worker|host|ab12"), Agent: protocol.Resource{CPU: 15, RSS: 30 << 20},
				RSSFree: 4 << 30, Free: 8, Sent: 2, Queued: 1, Suspended: 0, LagUS: 1500, LastS: 1,
				Processors: []protocol.ProcessorStatus{{PID: 7, Resource: protocol.Resource{CPU: 1000, RSS: 60 << 20}},
					{PID: 8, Resource: protocol.Resource{CPU: 500, RSS: 50 << 20}}},
			}},
		},
	}
}

func fixed(s feed.State) func() feed.State { return func() feed.State { return s } }

func now() time.Time { return t0 }

func TestGoldenLive(t *testing.T) {
	golden(t, "live.txt", scrape(t, handler(fixed(sampleState()), now)))
}

// A stopped feed shows feed_up 0 and its own counters, no frozen values.
func TestGoldenStale(t *testing.T) {
	s := sampleState()
	s.Stale = true
	golden(t, "stale.txt", scrape(t, handler(fixed(s), now)))
	golden(t, "never.txt", scrape(t, handler(fixed(feed.State{Stale: true}), now)))
}

// A hostile status: duplicate and invalid worker ids, huge labels, too
// many workers and message types. The scrape succeeds with bounded series.
func TestHostileStatus(t *testing.T) {
	s := sampleState()
	for i := 0; i < 3*maxWorkers; i++ {
		s.Status.Workers = append(s.Status.Workers, protocol.WorkerStatus{WorkerID: []byte(strconv.Itoa(i))})
	}
	s.Status.Workers = append(s.Status.Workers, protocol.WorkerStatus{WorkerID: []byte{0xff, 0xfe}},
		protocol.WorkerStatus{WorkerID: []byte("1")}, protocol.WorkerStatus{WorkerID: []byte(strings.Repeat("w", 1<<20))})
	for i := 0; i < 1000; i++ {
		s.Status.Binder.Received = append(s.Status.Binder.Received, protocol.MessageCount{Name: "T" + strconv.Itoa(i%300)})
	}
	s.Status.TaskStates = append(s.Status.TaskStates, protocol.TaskStateCount{State: 250, Count: 1})
	out := scrape(t, handler(fixed(s), now))
	if n := strings.Count(out, "scaler_worker_free_slots{"); n != maxWorkers {
		t.Errorf("%d worker series, want %d", n, maxWorkers)
	}
	if n := strings.Count(out, "scaler_scheduler_messages_received_total{"); n != maxMessageTypes {
		t.Errorf("%d message type series, want %d", n, maxMessageTypes)
	}
	if len(out) > 8<<20 {
		t.Errorf("scrape of %d bytes", len(out))
	}
}

// value returns the value of the sample line that starts with series.
func value(out, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// A real scheduler, two workers and a client running n tasks: the scraped
// finished counter is n exactly, and the worker and feed series are there.
func TestFinishedCounterExact(t *testing.T) {
	s := scalertest.StartScheduler(t, nil)
	m := feed.New(feed.Options{Address: s.MonitorAddr(), Timeout: 5 * time.Second, Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for i := 0; i < 2; i++ {
		scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{})
	}
	c, err := scalertest.NewClient(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 3000
	for i := uint64(0); i < n; i++ {
		if err := c.Send(c.Task(i)); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < n; {
		msg, err := c.Recv(30 * time.Second)
		if err != nil {
			t.Fatalf("after %d results: %v", got, err)
		}
		if r, ok := msg.(*protocol.TaskResult); ok {
			if r.Type != protocol.ResultSuccess {
				t.Fatalf("result %+v", r)
			}
			got++
		}
	}
	h := Handler(m)
	var out string
	if !scalertest.WaitFor(20*time.Second, func() bool {
		out = scrape(t, h)
		v, ok := value(out, `scaler_tasks_finished_total{outcome="Success"}`)
		time.Sleep(100 * time.Millisecond)
		return ok && v >= n
	}) {
		t.Fatalf("finished counter never reached %d:\n%s", n, out)
	}
	// The status counts a worker's tasks until its heartbeat after the
	// last result, so Running reaches 0 a status or two later, on a
	// loaded machine maybe more.
	if !scalertest.WaitFor(30*time.Second, func() bool {
		out = scrape(t, h)
		v, ok := value(out, `scaler_tasks{state="Running"}`)
		time.Sleep(100 * time.Millisecond)
		return ok && v == 0
	}) {
		t.Fatalf("Running never reached 0:\n%s", out)
	}
	// Exactly n, and still n a status later: wait for a status newer than
	// the one seen (monitor_sent grew: only statuses are published now).
	sent := m.State().Status.MonitorSent
	if !scalertest.WaitFor(30*time.Second, func() bool {
		time.Sleep(100 * time.Millisecond)
		return m.State().Status.MonitorSent > sent
	}) {
		t.Fatalf("no status after monitor_sent %d", sent)
	}
	out = scrape(t, h)
	checks := map[string]float64{
		`scaler_tasks_finished_total{outcome="Success"}`: n,
		`scaler_tasks_finished_total{outcome="Failed"}`:  0,
		`scaler_tasks{state="Running"}`:                  0,
		`scaler_workers`:                                 2,
		`scaler_feed_up`:                                 1,
	}
	for series, want := range checks {
		if v, ok := value(out, series); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if strings.Count(out, "scaler_worker_free_slots{") != 2 || !strings.Contains(out, "scaler_scheduler_rss_bytes ") {
		t.Errorf("worker or scheduler series missing:\n%s", out)
	}
}
