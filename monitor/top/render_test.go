package top

import (
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/expect"
	"github.com/opengris/scaler/monitor/feed"
)

var update = flag.Bool("update", false, "rewrite testdata/top/*.golden from Render")

const goldenDir = "../../testdata/top"

var now = time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)

const (
	hex1 = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	hex2 = "ffeeddccbbaa99887766554433221100"
	hex3 = "1234567890abcdef1234567890abcdef"
)

// status is a scheduler with three workers of one cluster (one shared pid),
// one of them in a group and behind on heartbeats, and two clients.
func status() *protocol.StateScheduler {
	s := &protocol.StateScheduler{
		Binder: protocol.BinderStatus{
			Received: []protocol.MessageCount{{Name: "ClientHeartbeat", Count: 12}, {Name: "Task", Count: 200000}, {Name: "TaskResult", Count: 200000}, {Name: "WorkerHeartbeat", Count: 183109}},
			Sent:     []protocol.MessageCount{{Name: "ClientHeartbeatEcho", Count: 12}, {Name: "TaskResult", Count: 200000}, {Name: "Task", Count: 200000}},
		},
		Scheduler:      protocol.Resource{CPU: 12, RSS: 38902170},
		RSSFree:        10 << 30,
		Clients:        []protocol.ClientTaskCount{{Client: []byte("321|Client|" + hex2), Tasks: 3}, {Client: []byte("321|Client|" + hex1), Tasks: 1500}},
		ObjectCount:    24,
		MonitorDropped: 1234,
		WorkerGroups: []protocol.WorkerGroup{
			{GroupID: []byte("group-long-name"), WorkerIDs: [][]byte{[]byte("1000|Worker|myhost|" + hex2)}},
		},
		Workers: []protocol.WorkerStatus{
			{
				WorkerID: []byte("1000|Worker|myhost|" + hex1), Agent: protocol.Resource{CPU: 5, RSS: 100 << 20},
				RSSFree: 8 << 30, Free: 998, Sent: 2, Queued: 0, LagUS: 700, LastS: 7, ITL: "111",
				Processors: []protocol.ProcessorStatus{{PID: 11, Resource: protocol.Resource{CPU: 1000, RSS: 120 << 20}}},
			},
			{
				WorkerID: []byte("1000|Worker|myhost|" + hex2), Agent: protocol.Resource{CPU: 9, RSS: 90 << 20},
				RSSFree: 7 << 30, Free: 1000, Sent: 0, Queued: 3, Suspended: 1, LagUS: 1_500_000_000, LastS: 255, ITL: "100",
				Processors: []protocol.ProcessorStatus{{PID: 12, Resource: protocol.Resource{CPU: 250, RSS: 60 << 20}}, {PID: 13, Resource: protocol.Resource{CPU: 0, RSS: 61 << 20}}},
			},
			{
				WorkerID: []byte("1000|Worker|myhost|" + hex3), Agent: protocol.Resource{CPU: 3, RSS: 110 << 20},
				RSSFree: 9 << 30, Free: 999, Sent: 1, Queued: 1, LagUS: 1200, LastS: 0, ITL: "110",
				Processors: []protocol.ProcessorStatus{{PID: 14, Resource: protocol.Resource{CPU: 10, RSS: 50 << 20}}},
			},
		},
	}
	for st := protocol.TaskState(0); st < protocol.NumTaskStates; st++ {
		s.TaskStates = append(s.TaskStates, protocol.TaskStateCount{State: st, Count: uint64(st) * 1000})
	}
	return s
}

func live() feed.State {
	return feed.State{Address: "tcp://127.0.0.1:6380", Status: status(), Updated: now.Add(-400 * time.Millisecond)}
}

func text(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestGolden pins whole screens. Regenerate with
// go test ./monitor/top -run TestGolden -update, then review the diff.
func TestGolden(t *testing.T) {
	press := func(keys string) View {
		v := NewView(200, 50)
		for _, k := range keys {
			v.Press(k)
		}
		return v
	}
	stale := live()
	stale.Stale, stale.Updated, stale.Restarts = true, now.Add(-75*time.Second), 1
	noWorkers := live()
	noWorkers.Status.Workers, noWorkers.Status.Clients, noWorkers.Status.WorkerGroups = nil, nil, nil
	many := live()
	for i := range 40 {
		many.Status.Workers = append(many.Status.Workers, protocol.WorkerStatus{WorkerID: fmt.Appendf(nil, "2000|Worker|other|%032x", i), ITL: "000"})
	}
	cases := []struct {
		name  string
		state feed.State
		view  View
	}{
		{"waiting", feed.State{Address: "tcp://127.0.0.1:6380"}, NewView(200, 50)},
		{"waiting_stale", feed.State{Address: "tcp://127.0.0.1:6380", Stale: true}, NewView(200, 50)},
		{"live", live(), NewView(200, 50)},
		{"live_sort_rss_free", live(), press("F")},
		{"live_sort_worker_reversed", live(), press("nn")},
		{"stale", stale, NewView(200, 50)},
		{"no_workers", noWorkers, NewView(200, 50)},
		{"many_workers_cut", many, NewView(200, 40)},
		{"narrow_bands", live(), NewView(80, 50)},
		{"narrow_scrolled", live(), View{Sort: 'c', Width: 80, Height: 50, Left: 3}},
		{"narrow_scrolled_to_the_end", live(), View{Sort: 'c', Width: 80, Height: 50, Left: 1000}},
		{"too_narrow", live(), NewView(20, 50)},
		{"narrow_many_workers", many, NewView(100, 40)},
		{"too_short", live(), NewView(200, 15)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := text(Render(c.state, c.view, now))
			expect.Golden(t, filepath.Join(goldenDir, c.name+".golden"), []byte(got), *update)
		})
	}
}

// Every line fits the terminal, whatever its size.
func TestRenderFits(t *testing.T) {
	for _, w := range []int{0, 1, 10, 79, 80, 120, 200} {
		for _, h := range []int{0, 1, 5, 15, 24, 50} {
			lines := Render(live(), NewView(w, h), now)
			if len(lines) > h {
				t.Errorf("%dx%d: %d lines", w, h, len(lines))
			}
			for _, l := range lines {
				if runeLen(l.Text) > w {
					t.Errorf("%dx%d: line %q too wide", w, h, l.Text)
				}
			}
		}
	}
}

// workerOrder is the worker labels in screen order.
func workerOrder(t *testing.T, lines []Line) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		workers, _, _ := strings.Cut(l.Text, " | ") // the clients are to the right
		for _, h := range []string{hex1, hex2, hex3} {
			if strings.Contains(workers, h[len(h)-8:]) {
				out = append(out, h[:4])
			}
		}
	}
	if len(out) != 3 {
		t.Fatalf("found %d worker rows", len(out))
	}
	return out
}

// Each sort key marks its column and orders the rows by it; the same key
// again reverses the order.
func TestSortKeys(t *testing.T) {
	// hex1, hex2, hex3 prefixes as workerOrder names them.
	a, b, c := hex1[:4], hex2[:4], hex3[:4]
	want := map[rune][]string{
		'g': {a, c, b}, // "" < "" < group-long-name; ties by id
		'n': {b, c, a}, // by label: …5544 < …5678 < …a4b5
		'C': {b, a, c}, // 9, 5, 3
		'M': {c, a, b}, // 110M, 100M, 90M
		'c': {a, b, c}, // 1000, 250, 10
		'm': {b, a, c}, // 121M, 120M, 50M
		'F': {c, a, b}, // 9G, 8G, 7G
		'f': {b, c, a}, // 1000, 999, 998
		'w': {a, c, b}, // 2, 1, 0
		'd': {b, c, a}, // 3, 1, 0
		's': {b, a, c}, // 1, 0, 0 (ties by id)
		'l': {b, c, a}, // 1500 s, 1.2 ms, 0.7 ms
	}
	for _, sk := range sortKeys {
		v := View{Width: 200, Height: 50} // no column chosen yet, so c also sorts first
		v.Press(sk.key)
		lines := Render(live(), v, now)
		if !strings.Contains(text(lines), "["+sk.column+"]") {
			t.Errorf("%c: no [%s] header", sk.key, sk.column)
		}
		got := workerOrder(t, lines)
		if !slices.Equal(got, want[sk.key]) {
			t.Errorf("%c (%s): order %v, want %v", sk.key, sk.column, got, want[sk.key])
		}
		v.Press(sk.key)
		rev := workerOrder(t, Render(live(), v, now))
		if sk.key == 'g' || sk.key == 's' {
			continue // ties: reversing the column keeps the id order among equals
		}
		r := slices.Clone(got)
		slices.Reverse(r)
		if !slices.Equal(rev, r) {
			t.Errorf("%c pressed twice: order %v, want %v", sk.key, rev, r)
		}
	}
	if len(want) != len(sortKeys) {
		t.Errorf("%d sort keys, %d expectations", len(sortKeys), len(want))
	}
}

func TestPress(t *testing.T) {
	v := NewView(1, 1)
	if v.Press('x') || v.Press('q') {
		t.Fatal("x and q are not sort keys")
	}
	if !v.Press('c') || !v.Reverse || !v.Press('c') || v.Reverse {
		t.Fatal("c on the initial cpu sort must toggle the direction")
	}
	if !v.Press('F') || v.Sort != 'F' || v.Reverse {
		t.Fatal("a new key sorts by its column in its first direction")
	}
}
