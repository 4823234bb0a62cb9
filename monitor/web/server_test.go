package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/wait"
	"github.com/opengris/scaler/monitor/feed"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
	}
}

var t0 = time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)

const (
	w1 = "4242|Worker|node7|3fa90c11aa0b4c5e9d0e1f2a3b4c5d6e"
	w2 = "4242|Worker|node7|3fa9d2e7bb1c4d6f8e9f0a1b2c3d4e5f" // shares 4 hex digits with w1
	w3 = "5151|Worker|gpu-1|07c1e2d3c4b5a6978877665544332211" // gone: only in the log
	c1 = "777|Client|9b1f00112233445566778899aabbccdd"
)

// sampleState is a feed state with one of each thing the page shows.
func sampleState(now time.Time) feed.State {
	status := &protocol.StateScheduler{
		Scheduler:   protocol.Resource{CPU: 153, RSS: 48 << 20},
		RSSFree:     12 << 30,
		ObjectCount: 17,
		Clients:     []protocol.ClientTaskCount{{Client: []byte(c1), Tasks: 9}},
		TaskStates: []protocol.TaskStateCount{
			{State: protocol.TaskStateInactive, Count: 3}, {State: protocol.TaskStateRunning, Count: 2},
			{State: protocol.TaskStateSuccess, Count: 1200}, {State: protocol.TaskStateFailed, Count: 7},
			{State: protocol.TaskStateCanceled, Count: 1},
		},
		Workers: []protocol.WorkerStatus{
			{
				WorkerID: []byte(w2), Agent: protocol.Resource{CPU: 12, RSS: 30 << 20}, RSSFree: 11 << 30,
				Free: 998, Sent: 2, Queued: 1, LagUS: 850, LastS: 0, ITL: "111",
				Processors: []protocol.ProcessorStatus{
					{PID: 9002, Initialized: true, Resource: protocol.Resource{CPU: 0, RSS: 40 << 20}},
					{PID: 9001, Initialized: true, HasTask: true, Resource: protocol.Resource{CPU: 990, RSS: 120 << 20}},
				},
			},
			{
				WorkerID: []byte(w1), Agent: protocol.Resource{CPU: 8, RSS: 29 << 20}, RSSFree: 11 << 30,
				Free: 1000, LagUS: 2300, LastS: 7, ITL: "100",
				Processors: []protocol.ProcessorStatus{{PID: 8001, Suspended: true, Initialized: true, HasTask: true}},
			},
		},
		WorkerGroups: []protocol.WorkerGroup{{GroupID: []byte("grp-a"), WorkerIDs: [][]byte{[]byte(w1)}}},
	}
	task := func(id, fn, worker string, s protocol.TaskState, end time.Duration, d time.Duration, mem uint64) feed.Task {
		return feed.Task{ID: id, Function: fn, Worker: worker, State: s, End: now.Add(end), Duration: d, PeakMem: mem}
	}
	return feed.State{
		Address:   "tcp://127.0.0.1:2347",
		Status:    status,
		Updated:   now.Add(-300 * time.Millisecond),
		Restarts:  1,
		Overflows: 4,
		Missed:    2,
		Tasks: []feed.Task{ // newest first
			task("a5", "score_model", w2, protocol.TaskStateSuccess, -100*time.Millisecond, 200*time.Millisecond, 0),
			task("a4", "score_model", w2, protocol.TaskStateSuccess, -300*time.Millisecond, 190*time.Millisecond, 2<<20),
			task("a3", "flaky_fetch", w1, protocol.TaskStateFailed, -2*time.Second, 40*time.Millisecond, 0),
			task("a2", "", w3, protocol.TaskStateCanceled, -5*time.Second, 1500*time.Millisecond, 0),
			task("a1", "resize_image", w1, protocol.TaskStateSuccess, -8*time.Second, 1100*time.Millisecond, 25<<20),
		},
		Running: []feed.Task{{ID: "a6", Function: "score_model", Worker: w2, State: protocol.TaskStateRunning, Start: now.Add(-50 * time.Millisecond)}},
		Finished: []feed.Second{
			{At: now.Add(-200 * time.Second).Truncate(time.Second), Success: 99}, // older than the chart
			{At: now.Add(-8 * time.Second).Truncate(time.Second), Success: 1},
			{At: now.Add(-5 * time.Second).Truncate(time.Second), Canceled: 1},
			{At: now.Add(-2 * time.Second).Truncate(time.Second), Failed: 1},
			{At: now.Truncate(time.Second), Success: 2},
		},
	}
}

func encode(t *testing.T, snap Snapshot) []byte {
	t.Helper()
	b, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestSnapshotGolden(t *testing.T) {
	cases := []struct {
		name  string
		state func(now time.Time) feed.State
	}{
		{"live", sampleState},
		{"waiting", func(time.Time) feed.State { return feed.State{Address: "tcp://127.0.0.1:2347", Stale: true} }},
		{"stopped", func(now time.Time) feed.State {
			st := sampleState(now)
			st.Stale, st.Updated = true, now.Add(-42*time.Second)
			st.Running[0].Start = now.Add(-45 * time.Second) // its bar ends at the last update
			return st
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStream(defaultStream)
			h := &history{window: historyWindow, every: 900 * time.Millisecond}
			// Two looks a second apart: the second must not add the tasks
			// of the first again.
			for i, now := range []time.Time{t0.Add(-time.Second), t0} {
				st := c.state(now)
				if i == 0 && len(st.Tasks) > 0 {
					st.Tasks = st.Tasks[2:] // a5 and a4 arrive later
				}
				st.Updated = st.Updated.Add(time.Duration(i) * time.Millisecond)
				s.observe(&st, now)
				h.observe(&st, now)
			}
			st := c.state(t0)
			golden(t, "snapshot_"+c.name+".json", encode(t, buildSnapshot(&st, s, h, t0)))
		})
	}
}

func TestStreamCountsEachTaskOnce(t *testing.T) {
	s := newStream(defaultStream)
	st := sampleState(t0)
	for range 3 {
		s.observe(&st, t0)
	}
	if s.done[w1] != 2 || s.done[w2] != 2 || s.done[w3] != 1 {
		t.Errorf("done per worker = %v, want w1 2, w2 2, w3 1", s.done)
	}
}

func TestStreamMergesBackToBackTasksAndStaysBounded(t *testing.T) {
	cfg := streamConfig{Window: time.Minute, MaxBars: 50, MergeGap: 100 * time.Millisecond}
	s := newStream(cfg)
	// While sparse, every task has its own bar.
	for i := range 5 {
		end := t0.Add(time.Duration(i+1) * 10 * time.Millisecond)
		st := feed.State{Tasks: []feed.Task{{ID: fmt.Sprint("s", i), Function: "f", Worker: w1, State: protocol.TaskStateSuccess,
			End: end, Duration: 10 * time.Millisecond}}}
		s.observe(&st, t0)
	}
	if len(s.bars) != 5 {
		t.Fatalf("%d bars for 5 tasks in a sparse stream, want 5", len(s.bars))
	}
	s = newStream(cfg)
	// 1,000 tasks back to back on one worker fill the stream: from then
	// on they share bars.
	var tasks []feed.Task
	for i := range 1000 {
		end := t0.Add(time.Duration(i+1) * 10 * time.Millisecond)
		tasks = append([]feed.Task{{ID: fmt.Sprint("m", i), Function: "f", Worker: w1, State: protocol.TaskStateSuccess,
			End: end, Duration: 10 * time.Millisecond}}, tasks...)
	}
	st := feed.State{Tasks: tasks}
	s.observe(&st, t0.Add(10*time.Second))
	if dense := cfg.MaxBars / 4; len(s.bars) != dense || s.bars[dense-1].n != 1000-dense+1 {
		t.Fatalf("bars = %d (last n %d), want %d: single ones, then one of the other %d tasks",
			len(s.bars), s.bars[len(s.bars)-1].n, dense, 1000-dense+1)
	}
	// Alternating outcomes cannot merge: the bar count hits MaxBars.
	for round := range 5 {
		var ts []feed.Task
		for i := range 100 {
			state := protocol.TaskStateSuccess
			if i%2 == 1 {
				state = protocol.TaskStateFailed
			}
			end := t0.Add(20*time.Second + time.Duration(round*100+i)*10*time.Millisecond)
			ts = append([]feed.Task{{ID: fmt.Sprint("r", round, "-", i), Function: "f", Worker: w2, State: state,
				End: end, Duration: 5 * time.Millisecond}}, ts...)
		}
		st := feed.State{Tasks: ts}
		s.observe(&st, t0.Add(30*time.Second))
		if len(s.bars) > cfg.MaxBars {
			t.Fatalf("round %d: %d bars, bound is %d", round, len(s.bars), cfg.MaxBars)
		}
	}
	if len(s.bars) != cfg.MaxBars {
		t.Errorf("%d bars, want the bound %d", len(s.bars), cfg.MaxBars)
	}
	// Everything leaves the window in time.
	s.observe(&feed.State{}, t0.Add(5*time.Minute))
	if len(s.bars) != 0 || len(s.last) != 0 {
		t.Errorf("after the window: %d bars, %d last entries, want none", len(s.bars), len(s.last))
	}
}

func TestShortLabels(t *testing.T) {
	cases := []struct {
		ids  []string
		want []string
	}{
		{[]string{w1}, []string{"node7·3fa9"}},
		// Same pid and host and the same first 4 hex digits: the last 4
		// tell them apart.
		{[]string{w1, w2}, []string{"node7·…5d6e", "node7·…4e5f"}},
		// Neither end tells them apart in 4: the prefix grows until it does.
		{[]string{"1|Worker|h|aaaa1bbbb", "1|Worker|h|aaaa2bbbb"}, []string{"h·aaaa1", "h·aaaa2"}},
		// Different hosts need no longer tail.
		{[]string{w1, w3}, []string{"node7·3fa9", "gpu-1·07c1"}},
		{[]string{c1}, []string{"777·9b1f"}},
		// Ids that differ only at the end (a counter) are told apart by it.
		{[]string{"9|Worker|h|00000000000000a1", "9|Worker|h|00000000000000b2"}, []string{"h·…00a1", "h·…00b2"}},
		{[]string{"some-custom-id", "4242|Worker|x|nothex"}, []string{"some-custom-id", "4242|Worker|x|nothex"}},
		// Identical ids cannot be told apart; the loop still ends.
		{[]string{"1|Worker|a|abcd", "1|Worker|a|abcd"}, []string{"a·abcd", "a·abcd"}},
	}
	for _, c := range cases {
		got := shortLabels(c.ids)
		for i, id := range c.ids {
			if got[id] != c.want[i] {
				t.Errorf("shortLabels(%q)[%q] = %q, want %q", c.ids, id, got[id], c.want[i])
			}
		}
	}
}

func TestWriteEventGolden(t *testing.T) {
	var b bytes.Buffer
	for _, e := range []struct{ event, data string }{
		{"snapshot", `{"a":1}`},
		{"", "no event name"},
		{"snapshot", "two\nlines\r\nand a CR"},
		{"snapshot", ""},
	} {
		if err := writeEvent(&b, e.event, []byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "events.golden", b.Bytes())
}

func TestHubKeepsOnlyTheNewestFrameOfASlowViewer(t *testing.T) {
	h := newHub(2)
	slow, fast := h.join(), h.join()
	if h.join() != nil {
		t.Fatal("a third viewer joined a hub bounded to 2")
	}
	for i := range 100 {
		h.publish([]byte(fmt.Sprint(i)))
		if got := string(<-fast.frames); got != fmt.Sprint(i) {
			t.Fatalf("fast viewer got %q, want %d", got, i)
		}
	}
	if len(slow.frames) != 1 || string(<-slow.frames) != "99" || slow.skipped != 99 {
		t.Errorf("slow viewer: %d frames pending, %d skipped; want only frame 99 and 99 skipped", len(slow.frames), slow.skipped)
	}
	h.leave(slow)
	if h.join() == nil {
		t.Error("no room after a viewer left")
	}
}

// fakeSource is a feed whose state the test sets.
type fakeSource struct {
	mu sync.Mutex
	st feed.State
}

func (f *fakeSource) State() feed.State { f.mu.Lock(); defer f.mu.Unlock(); return f.st }

func startServer(t *testing.T, opt Options) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := serveOn(t, opt, ln)
	return srv, "http://" + ln.Addr().String()
}

// serveOn runs a Server on ln until the test ends; cancel stops it early
// (Serve's error is then checked at cleanup all the same).
func serveOn(t *testing.T, opt Options, ln net.Listener) (srv *Server, stop func() error) {
	t.Helper()
	srv = New(opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-done:
			case <-time.After(20 * time.Second):
				serr = fmt.Errorf("Serve did not return within 20 s of cancel")
			}
		})
		return serr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, stop
}

// readEvent reads one event from an SSE stream: its name and data.
func readEvent(r *bufio.Reader) (event, data string, err error) {
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && (event != "" || lines != nil):
			return event, strings.Join(lines, "\n"), nil
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			lines = append(lines, line[len("data: "):])
		}
	}
}

func TestEventsStreamSnapshots(t *testing.T) {
	src := &fakeSource{st: sampleState(time.Now())}
	_, base := startServer(t, Options{Source: src, Interval: 20 * time.Millisecond})
	resp, err := http.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	var first Snapshot
	for i := range 3 {
		ev, data, err := readEvent(r)
		if err != nil {
			t.Fatal(err)
		}
		var snap Snapshot
		if ev != "snapshot" || json.Unmarshal([]byte(data), &snap) != nil {
			t.Fatalf("event %d: %q %.200q", i, ev, data)
		}
		if i == 0 {
			first = snap
		} else if snap.Now < first.Now {
			t.Errorf("frame %d is older than the first", i)
		}
	}
	if len(first.Workers) != 2 || len(first.Log) != 5 || first.Feed.State != "live" {
		t.Errorf("first frame: %d workers, %d log rows, feed %q", len(first.Workers), len(first.Log), first.Feed.State)
	}
}

func TestViewersAreBounded(t *testing.T) {
	src := &fakeSource{st: sampleState(time.Now())}
	srv, base := startServer(t, Options{Source: src, Interval: 20 * time.Millisecond, MaxViewers: 2})
	open := func() *http.Response {
		resp, err := http.Get(base + "/events")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	a, b := open(), open()
	defer b.Body.Close()
	waitFor(t, "two viewers", func() bool { return srv.hub.count() == 2 })
	c := open()
	body, _ := io.ReadAll(c.Body)
	c.Body.Close()
	if c.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("third page: %s %q, want 503", c.Status, body)
	}
	a.Body.Close()
	waitFor(t, "the first viewer to leave", func() bool { return srv.hub.count() == 1 })
	d := open()
	defer d.Body.Close()
	if d.StatusCode != http.StatusOK {
		t.Errorf("after one left: %s, want 200", d.Status)
	}
}

// smallSendBuffers wraps a listener so that every accepted connection has
// a small kernel send buffer: with a small receive buffer at the client
// too, a frame of a megabyte cannot fit in the socket buffers, so a
// client that never reads makes even the first write block.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// stalledViewer opens /events with a small receive buffer, set before
// connecting so the advertised window is small from the start, and never
// reads.
func stalledViewer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	return conn
}

// bigFrameState is a feed state whose snapshot is several megabytes (100
// log rows with 40 kB function names), far more than the socket buffers
// stalledViewer and smallSendBuffers leave.
func bigFrameState() feed.State {
	st := sampleState(time.Now())
	for i := range feed.MaxTasks {
		st.Tasks = append(st.Tasks, feed.Task{ID: fmt.Sprintf("%032x", i), Function: fmt.Sprintf("%d%s", i, strings.Repeat("f", 40000)),
			Worker: w1, State: protocol.TaskStateSuccess, End: time.Now(), Duration: time.Millisecond})
	}
	return st
}

// A page that stops reading (a stalled browser) is dropped once a write
// stalls for WriteTimeout, the first frame included: the interval is an
// hour, so the first frame is the only write, and it cannot fit in the
// socket buffers.
func TestStalledViewerIsDropped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{st: bigFrameState()}
	srv, _ := serveOn(t, Options{Source: src, Interval: time.Hour, WriteTimeout: 300 * time.Millisecond}, smallSendBuffers{ln})
	stalledViewer(t, ln.Addr().String())
	waitFor(t, "the viewer to join", func() bool { return srv.hub.count() == 1 })
	// Never read: the server's first write stalls, then it gives up.
	waitFor(t, "the stalled viewer to be dropped", func() bool { return srv.hub.count() == 0 })
}

// A viewer stalled in a write must not make Ctrl-C an error: Serve closes
// the connections that Shutdown could not wait out, and returns nil.
func TestStalledViewerDoesNotBlockShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{st: bigFrameState()}
	srv, stop := serveOn(t, Options{Source: src, Interval: time.Hour, WriteTimeout: time.Hour}, smallSendBuffers{ln})
	stalledViewer(t, ln.Addr().String())
	waitFor(t, "the viewer to join", func() bool { return srv.hub.count() == 1 })
	time.Sleep(200 * time.Millisecond) // let the handler reach its blocked write
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve after cancel with a stalled viewer: %v", err)
	}
	t.Logf("Serve returned %v after cancel", time.Since(start).Round(time.Millisecond))
	waitFor(t, "the stalled viewer's handler to end", func() bool { return srv.hub.count() == 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.Until(t, 30*time.Second, what, cond)
}

func TestSnapshotEndpointAndAssets(t *testing.T) {
	src := &fakeSource{st: sampleState(time.Now())}
	_, base := startServer(t, Options{Source: src, Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "# TYPE fake counter\n")
	})})
	for path, want := range map[string]string{
		"/":             `<script src="app.js"></script>`,
		"/app.js":       "new EventSource(",
		"/style.css":    "--success",
		"/api/snapshot": `"workers":[`,
		"/metrics":      "# TYPE fake",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s, body lacks %q", path, resp.Status, want)
		}
	}
}

// The page must work on a closed network: no asset may load anything from
// another host, and every local reference must be embedded.
func TestAssetsAreSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`)
	local := regexp.MustCompile(`(?:src|href)="([^":]+)"`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := assets.ReadFile(path)
		for _, m := range external.FindAllString(string(b), -1) {
			if m != "http://www.w3.org/" { // the SVG namespace name, never fetched
				t.Errorf("%s refers to another host: %s", path, m)
			}
		}
		for _, m := range local.FindAllStringSubmatch(string(b), -1) {
			if _, err := fs.Stat(assets, "assets/"+m[1]); err != nil {
				t.Errorf("%s refers to %s, which is not embedded", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// scaleState is a feed state of a busy cluster: 100 workers of 8
// processors, and the tasks of tick (500 ms at 1,000 tasks/s) on top of
// the previous ones, 2% failing.
func scaleState(now time.Time, tick int, prev []feed.Task) feed.State {
	status := &protocol.StateScheduler{TaskStates: []protocol.TaskStateCount{{State: protocol.TaskStateSuccess, Count: uint64(tick * 500)}}}
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("%d|Worker|host%02d|%032x", 1000+i/10, i/10, i*7919)
		w := protocol.WorkerStatus{WorkerID: []byte(ids[i]), ITL: "111"}
		for p := range 8 {
			w.Processors = append(w.Processors, protocol.ProcessorStatus{PID: uint32(i*8 + p), Initialized: true, HasTask: true})
		}
		status.Workers = append(status.Workers, w)
	}
	fns := []string{"resize_image", "score_model", "flaky_fetch"}
	var fresh []feed.Task
	for k := range 500 {
		n := tick*500 + k
		state := protocol.TaskStateSuccess
		if n%50 == 7 {
			state = protocol.TaskStateFailed
		}
		end := now.Add(-500*time.Millisecond + time.Duration(k)*time.Millisecond)
		fresh = append([]feed.Task{{ID: fmt.Sprintf("%032x", n), Function: fns[n%3], Worker: ids[n%100], State: state,
			End: end, Duration: 100 * time.Millisecond}}, fresh...)
	}
	tasks := append(fresh, prev...)
	if len(tasks) > feed.MaxTasks {
		tasks = tasks[:feed.MaxTasks]
	}
	var running []feed.Task
	for i := range 800 {
		running = append(running, feed.Task{ID: fmt.Sprintf("r%d", i), Function: "score_model", Worker: ids[i%100],
			State: protocol.TaskStateRunning, Start: now.Add(-50 * time.Millisecond)})
	}
	var finished []feed.Second // 980 successes and 20 failures a second since tick 0
	for sec := now.Add(-time.Duration(tick) * 500 * time.Millisecond).Unix(); sec <= now.Unix(); sec++ {
		finished = append(finished, feed.Second{At: time.Unix(sec, 0), Success: 980, Failed: 20})
	}
	return feed.State{Address: "tcp://x:1", Status: status, Updated: now, Tasks: tasks, Running: running, Finished: finished}
}

// At 100 workers and 1,000 tasks/s the frame stays small and cheap: the
// browser's work does not grow with the task rate.
func TestSnapshotAtScale(t *testing.T) {
	s := newStream(defaultStream)
	h := &history{window: historyWindow, every: 900 * time.Millisecond}
	var prev []feed.Task
	var frame []byte
	var worst time.Duration
	for tick := range 130 { // 65 s at 2 Hz: the stream window fills and rolls
		now := t0.Add(time.Duration(tick) * 500 * time.Millisecond)
		st := scaleState(now, tick, prev)
		prev = st.Tasks
		began := time.Now()
		s.observe(&st, now)
		h.observe(&st, now)
		snap := buildSnapshot(&st, s, h, now)
		b, err := json.Marshal(snap)
		if err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(began))
		frame = b
	}
	var snap Snapshot
	_ = json.Unmarshal(frame, &snap)
	t.Logf("last frame %d KB, %d bars, %d workers, %d log rows; slowest tick %s", len(frame)>>10,
		len(snap.Stream.Bars), len(snap.Workers), len(snap.Log), worst)
	if len(s.bars) > defaultStream.MaxBars || len(snap.Stream.Bars) > defaultStream.MaxBars+maxRunningBars {
		t.Errorf("%d stream bars kept, %d sent; bounds %d and %d", len(s.bars), len(snap.Stream.Bars), defaultStream.MaxBars, maxRunningBars)
	}
	if len(frame) > 512<<10 {
		t.Errorf("frame of %d KB at 1,000 tasks/s: the page would not keep up", len(frame)>>10)
	}
	if s.done[snap.Workers[0].ID] == 0 || s.missed != 0 {
		t.Errorf("done %v, missed %d", s.done[snap.Workers[0].ID], s.missed)
	}
	// Every task of the 65 s was counted exactly once.
	var total uint64
	for _, n := range s.done {
		total += n
	}
	if total != 130*500 {
		t.Errorf("stream counted %d finished tasks, want %d", total, 130*500)
	}
}

func BenchmarkStepAtScale(b *testing.B) {
	s := newStream(defaultStream)
	h := &history{window: historyWindow, every: 900 * time.Millisecond}
	var prev []feed.Task
	states := make([]feed.State, 0, 200)
	for tick := range 200 {
		st := scaleState(t0.Add(time.Duration(tick)*500*time.Millisecond), tick, prev)
		prev = st.Tasks
		states = append(states, st)
	}
	b.ResetTimer()
	var size int
	for i := range b.N {
		st := states[i%len(states)]
		now := t0.Add(time.Duration(i%len(states)) * 500 * time.Millisecond)
		s.observe(&st, now)
		h.observe(&st, now)
		frame, _ := json.Marshal(buildSnapshot(&st, s, h, now))
		size = len(frame)
	}
	b.ReportMetric(float64(size), "frame-bytes")
}
