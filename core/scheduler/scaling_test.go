package scheduler

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/protocol"
)

func scalingHarness(t *testing.T) *harness {
	return newHarness(t, func(c *Config) {
		c.Scaling = true
		c.ClientTimeout, c.WorkerTimeout = time.Hour, time.Hour
		c.BalanceInterval = time.Hour
		// An idle group goes at the next check, so the other rules show
		// plainly; TestScalingIdleTime tests the idle time.
		c.ScalingIdle = time.Nanosecond
	})
}

// scalingAsked is scalingHarness with client "c" whose one task "t1" has
// made the scheduler ask for a worker group (the request is taken).
func scalingAsked(t *testing.T) *harness {
	h := scalingHarness(t)
	h.client("c")
	h.submit("c", "t1")
	h.advance(time.Second)
	equal(t, "start", h.scales(), []string{"start_worker_group"})
	return h
}

// scalingHarnessLogged is scalingHarness whose scheduler logs into the
// returned buffer, with client "c" connected.
func scalingHarnessLogged(t *testing.T) (*harness, *bytes.Buffer) {
	h := scalingHarness(t)
	buf := new(bytes.Buffer)
	h.s.log = logging.ForTest("scheduler", buf)
	h.client("c")
	return h, buf
}

// scales returns and clears the scaling requests, rendered as
// "start" or "shutdown(<group>)".
func (h *harness) scales() []string {
	var out []string
	for _, r := range h.out.scales {
		if r.Action == ScaleShutdown {
			out = append(out, "shutdown("+r.GroupID+")")
		} else {
			out = append(out, r.Action.String())
		}
	}
	h.out.scales = nil
	return out
}

// answer answers the outstanding scaling request.
func (h *harness) answer(r ScaleResponse) {
	h.t.Helper()
	if h.s.scaling.inFlight == nil {
		h.t.Fatal("no scaling request outstanding")
	}
	r.ID = h.s.scaling.inFlight.ID
	h.s.OnScaleResponse(r, h.now)
}

func started(group string, workers ...string) ScaleResponse {
	return ScaleResponse{Status: 200, GroupID: group, WorkerIDs: workers, Message: "Worker group started"}
}

var shutDown = ScaleResponse{Status: 200, Message: "Worker group shutdown"}

func groups(h *harness) []string {
	var out []string
	for _, g := range h.s.WorkerGroups() {
		s := string(g.GroupID) + ":"
		for i, w := range g.WorkerIDs {
			if i > 0 {
				s += ","
			}
			s += string(w)
		}
		out = append(out, s)
	}
	return out
}

// TestScalingLifecycle: one task and no worker starts a group; nothing more
// is asked while its worker connects; once idle, the group is shut down.
func TestScalingLifecycle(t *testing.T) { // items 66, 67
	h := scalingHarness(t)
	h.client("c")
	h.advance(time.Second)
	equal(t, "no tasks, no workers: nothing", h.scales(), nil)
	h.submit("c", "t1")
	h.advance(time.Second)
	equal(t, "task without worker", h.scales(), []string{"start_worker_group"})
	h.advance(3 * time.Second)
	equal(t, "one call at a time", h.scales(), nil)
	h.answer(started("native-1", "w1"))
	equal(t, "group recorded", groups(h), []string{"native-1:w1"})
	if st := h.s.Snapshot(h.now); len(st.WorkerGroups) != 1 || string(st.WorkerGroups[0].GroupID) != "native-1" {
		t.Fatalf("StateScheduler worker groups %+v", st.WorkerGroups)
	}
	h.advance(10 * time.Second)
	equal(t, "worker still connecting: no second group", h.scales(), nil)
	h.worker("w1", 10)
	equal(t, "task placed", describe(noEchoes(h.take())), []string{"w1:Task(t1)"})
	h.advance(time.Second)
	equal(t, "1 task, 1 worker: steady", h.scales(), nil)
	h.result("w1", "t1", protocol.ResultSuccess)
	h.advance(time.Second)
	equal(t, "idle group shut down", h.scales(), []string{"shutdown(native-1)"})
	h.answer(shutDown)
	equal(t, "group forgotten", groups(h), nil)
	h.advance(time.Second)
	equal(t, "external worker left alone", h.scales(), nil)
}

func TestScalingStartTriggers(t *testing.T) { // item 66
	cases := []struct {
		name  string
		setup func(h *harness)
		want  []string
	}{
		{name: "no worker, no task", setup: func(h *harness) {}},
		{name: "no worker, a task", want: []string{"start_worker_group"},
			setup: func(h *harness) { h.submit("c", "t1") }},
		{name: "tasks wait, every worker full", want: []string{"start_worker_group"},
			setup: func(h *harness) {
				h.worker("w", 1)
				h.submit("c", "t1")
				h.submit("c", "t2")
			}},
		// 1.12.5 needed more than 10 tasks per worker; one more task than
		// workers is enough here, queued or not.
		{name: "2 tasks on 1 worker with room for both", want: []string{"start_worker_group"},
			setup: func(h *harness) {
				h.worker("w", 100)
				h.submit("c", "t1")
				h.submit("c", "t2")
			}},
		{name: "as many tasks as workers", setup: func(h *harness) {
			h.worker("w1", 100)
			h.worker("w2", 100)
			h.submit("c", "t1")
			h.submit("c", "t2")
		}},
		// A started worker may well offer the capability (the adapter's
		// --per-worker-capabilities), so the task counts.
		{name: "waiting for a capability", want: []string{"start_worker_group"}, setup: func(h *harness) {
			h.worker("w", 10)
			h.submit("c", "t1")
			h.submit("c", "t2", "gpu")
		}},
		{name: "scaling disabled", setup: func(h *harness) {
			h.s.cfg.Scaling = false
			h.submit("c", "t1")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := scalingHarness(t)
			h.client("c")
			tc.setup(h)
			h.advance(time.Second)
			equal(t, "requests", h.scales(), tc.want)
		})
	}
}

// TestScalingAnswers: every kind of webhook answer; failures never change
// the groups and delay the next call by ScalingRetry.
func TestScalingAnswers(t *testing.T) { // item 67
	cases := []struct {
		name   string
		answer ScaleResponse
		groups []string
		retry  bool // the next call waits ScalingRetry
	}{
		{name: "started", answer: started("g1", "w1", "w2"), groups: []string{"g1:w1,w2"}},
		{name: "201 accepted too", answer: ScaleResponse{Status: 201, GroupID: "g1", WorkerIDs: []string{"w1"}}, groups: []string{"g1:w1"}},
		{name: "429 too many workers", answer: ScaleResponse{Status: 429, Message: "Max workers reached"}, retry: true},
		{name: "500", answer: ScaleResponse{Status: 500, Message: "boom"}, retry: true},
		{name: "400", answer: ScaleResponse{Status: 400, Message: "Unknown action"}, retry: true},
		{name: "no worker_group_id", answer: ScaleResponse{Status: 200}, retry: true},
		{name: "unreachable", answer: ScaleResponse{Err: "connection refused"}, retry: true},
		{name: "timeout", answer: ScaleResponse{Err: "context deadline exceeded"}, retry: true},
		{name: "not JSON", answer: ScaleResponse{Status: 200, Err: "invalid character '<'"}, retry: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := scalingAsked(t)
			h.answer(tc.answer)
			equal(t, "groups", groups(h), tc.groups)
			h.advance(4 * time.Second)
			if tc.retry {
				equal(t, "backing off", h.scales(), nil)
				h.advance(time.Second)
				equal(t, "retried", h.scales(), []string{"start_worker_group"})
			} else {
				equal(t, "waiting for the workers", h.scales(), nil)
			}
			checkInvariants(t, h.s)
		})
	}
	t.Run("stale answer dropped", func(t *testing.T) {
		h := scalingAsked(t)
		h.s.OnScaleResponse(ScaleResponse{ID: 99, Status: 200, GroupID: "x"}, h.now)
		if len(groups(h)) != 0 || h.s.scaling.inFlight == nil {
			t.Fatal("stale answer applied")
		}
	})
}

func TestScalingStartTimeout(t *testing.T) {
	h := scalingAsked(t)
	h.answer(started("g1", "never"))
	h.advance(59 * time.Second)
	equal(t, "waiting for the group's workers", h.scales(), nil)
	h.advance(time.Second)
	// Its listed worker never came: the group is shut down first.
	equal(t, "start timed out: the group is given up", h.scales(), []string{"shutdown(g1)"})
	h.answer(shutDown)
	h.advance(time.Second)
	equal(t, "start timed out: another group", h.scales(), []string{"start_worker_group"})
}

// TestScalingAnswerBounds: a start answer the scheduler cannot use or
// would have to keep without bound (no worker ids: its workers cannot be
// told from others, and an adapter that starts nothing would get a group
// recorded every start timeout forever; too many or too long ids) is a
// failure logged once, and the group is shut down again after the retry
// pause; a group id too long to keep is not recorded at all.
func TestScalingAnswerBounds(t *testing.T) {
	many := make([]string, maxGroupWorkers+1)
	for i := range many {
		many[i] = "w" + strconv.Itoa(i)
	}
	long := strings.Repeat("x", maxScalingIDLen+1)
	for _, tc := range []struct {
		name   string
		answer ScaleResponse
		groups []string // listed right after the answer
		next   []string // asked after the retry pause
		log    string
	}{
		{"no worker_ids", started("g1"), []string{"g1:"}, []string{"shutdown(g1)"}, "lists no worker_ids"},
		{"too many worker_ids", started("g1", many...), []string{"g1:"}, []string{"shutdown(g1)"}, "lists 257 worker_ids, more than 256"},
		{"a worker id too long", started("g1", "w1", long), []string{"g1:"}, []string{"shutdown(g1)"}, "longer than 512 bytes"},
		{"an empty worker id", started("g1", ""), []string{"g1:"}, []string{"shutdown(g1)"}, "empty or longer"},
		{"group id too long", started(long, "w1"), nil, []string{"start_worker_group"}, "worker_group_id is longer than 512 bytes"},
		{"the largest answer kept", started(long[1:], many[1:]...), []string{long[1:] + ":" + strings.Join(many[1:], ",")}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, buf := scalingHarnessLogged(t)
			h.submit("c", "t1")
			h.advance(time.Second)
			equal(t, "start", h.scales(), []string{"start_worker_group"})
			h.answer(tc.answer)
			equal(t, "groups", groups(h), tc.groups)
			h.advance(h.s.cfg.ScalingRetry)
			equal(t, "next", h.scales(), tc.next)
			if tc.log == "" {
				if strings.Contains(buf.String(), "[WARN]") {
					t.Fatalf("a warning for a good answer:\n%s", buf.String())
				}
				return
			}
			lines := strings.Count(buf.String(), "[WARN]")
			if lines != 1 || !strings.Contains(buf.String(), tc.log) || strings.Contains(buf.String(), long) {
				t.Fatalf("want one WARN line with %q (and no id longer than the bound), got:\n%.2000s", tc.log, buf.String())
			}
			if tc.next[0] != "start_worker_group" {
				h.answer(shutDown)
				equal(t, "shut down and forgotten", groups(h), nil)
			}
			checkInvariants(t, h.s)
		})
	}
}

// TestScalingGroupsBound: at maxWorkerGroups listed no start is asked for,
// said once; below it starts go on.
func TestScalingGroupsBound(t *testing.T) {
	h, buf := scalingHarnessLogged(t)
	// Groups whose workers are connected and busy: nothing else applies.
	for i := 0; i < maxWorkerGroups; i++ {
		id := strconv.Itoa(i)
		h.worker("w"+id, 1)
		h.s.scaling.groups = append(h.s.scaling.groups, &workerGroup{id: "g" + id, workers: []string{"w" + id}, startedAt: h.now})
		h.submit("c", "t"+id)
	}
	h.submit("c", "more")
	h.take()
	for i := 0; i < 3; i++ {
		h.advance(time.Second)
		equal(t, "at the bound", h.scales(), nil)
	}
	if n := strings.Count(buf.String(), "no more starts"); n != 1 {
		t.Fatalf("%d lines about the bound, want 1:\n%s", n, buf.String())
	}
	h.s.forgetGroup("g0")
	h.advance(time.Second)
	equal(t, "below the bound", h.scales(), []string{"start_worker_group"})
}

// TestScalingShutdownChoice: only groups whose workers all connected and
// hold no task are shut down, the one with the fewest queued tasks first;
// a refused shutdown keeps the group.
func TestScalingShutdownChoice(t *testing.T) { // items 66, 67
	h := scalingHarness(t)
	h.client("c")
	for i, g := range []string{"g1", "g2", "g3", "g4"} {
		h.submit("c", "s"+strconv.Itoa(i))
		h.advance(time.Second)
		equal(t, "start "+g, h.scales(), []string{"start_worker_group"})
		h.answer(started(g, "w"+g))
		// Queued tasks reported by heartbeats: g1 3, g2 1, g3 0, g4 2.
		h.handle("w"+g, &protocol.WorkerHeartbeat{QueueSize: 1, QueuedTasks: []uint32{3, 1, 0, 2}[i]})
	}
	equal(t, "one task per worker", describe(noEchoes(h.take())), []string{"wg1:Task(s0)", "wg2:Task(s1)", "wg3:Task(s2)", "wg4:Task(s3)"})
	// s2 keeps g3 busy; the others finish.
	for _, w := range []string{"wg1", "wg2", "wg4"} {
		h.result(w, "s"+strconv.Itoa(int(w[2]-'1')), protocol.ResultSuccess)
	}
	h.handle("wg3", &protocol.WorkerHeartbeat{QueueSize: 1})
	h.advance(time.Second)
	equal(t, "g3 is busy: g2 has the fewest queued", h.scales(), []string{"shutdown(g2)"})
	h.answer(ScaleResponse{Status: 500, Message: "boom"})
	equal(t, "500 keeps the group", groups(h), []string{"g1:wg1", "g2:wg2", "g3:wg3", "g4:wg4"})
	h.advance(4 * time.Second)
	equal(t, "pause after a failure", h.scales(), nil)
	h.advance(time.Second)
	equal(t, "retried after the pause", h.scales(), []string{"shutdown(g2)"})
	h.answer(shutDown)
	h.handle("wg2", &protocol.DisconnectRequest{Worker: []byte("wg2")})
	h.advance(time.Second)
	equal(t, "next: g4", h.scales(), []string{"shutdown(g4)"})
	h.answer(shutDown)
	h.handle("wg4", &protocol.DisconnectRequest{Worker: []byte("wg4")})
	h.advance(time.Second)
	equal(t, "1 task, 2 workers: g1", h.scales(), []string{"shutdown(g1)"})
	h.answer(shutDown)
	h.handle("wg1", &protocol.DisconnectRequest{Worker: []byte("wg1")})
	h.advance(time.Second)
	equal(t, "1 task, 1 worker: steady", h.scales(), nil)
	equal(t, "left", groups(h), []string{"g3:wg3"})
	// A group whose workers are all gone is reaped once there is no task.
	h.handle("wg3", &protocol.DisconnectRequest{Worker: []byte("wg3")})
	h.cancel("c", "s2", true)
	h.advance(time.Second)
	equal(t, "dead group", h.scales(), []string{"shutdown(g3)"})
	checkInvariants(t, h.s)
}

// fakeAdapter answers the harness's scaling requests like the native
// adapter with max workers: a start registers one new worker (queue size
// 10) unless max are live, then 429; a shutdown disconnects the worker.
type fakeAdapter struct {
	h      *harness
	max    int
	next   int
	live   map[string]string // group -> worker
	peak   int
	starts int
	denied int
}

func (a *fakeAdapter) serve() {
	r := a.h.s.scaling.inFlight
	if r == nil {
		return
	}
	a.h.out.scales = nil
	switch r.Action {
	case ScaleStart:
		if len(a.live) >= a.max {
			a.denied++
			a.h.answer(ScaleResponse{Status: 429, Message: "Maximum number of workers reached."})
			return
		}
		a.next++
		a.starts++
		g, w := "g"+strconv.Itoa(a.next), "w"+strconv.Itoa(a.next)
		a.live[g] = w
		a.peak = max(a.peak, len(a.live))
		a.h.answer(started(g, w))
		a.h.worker(w, 10)
	case ScaleShutdown:
		w, ok := a.live[r.GroupID]
		if !ok {
			a.h.answer(ScaleResponse{Status: 404, Message: "unknown"})
			return
		}
		delete(a.live, r.GroupID)
		a.h.answer(shutDown)
		a.h.handle(w, &protocol.DisconnectRequest{Worker: []byte(w)})
	}
}

// TestScalingReachesMaxWorkers: with at least N tasks and an adapter that
// allows N workers, N workers run (1.12.5 ran 2 of 10 for 15 tasks); the
// 429 beyond is retried after ScalingRetry; once the tasks end every group
// is shut down.
func TestScalingReachesMaxWorkers(t *testing.T) {
	for _, tc := range []struct{ tasks, max, want int }{
		{15, 10, 10}, {200, 4, 4}, {3, 10, 3}, {1, 4, 1}, {10, 10, 10},
	} {
		t.Run(fmt.Sprintf("%d tasks, max %d", tc.tasks, tc.max), func(t *testing.T) {
			h := scalingHarness(t)
			a := &fakeAdapter{h: h, max: tc.max, live: map[string]string{}}
			h.client("c")
			for i := 0; i < tc.tasks; i++ {
				h.submit("c", "t"+strconv.Itoa(i))
			}
			for i := 0; i < 3*tc.max+10; i++ {
				h.advance(time.Second)
				a.serve()
			}
			if a.peak != tc.want || len(a.live) != tc.want {
				t.Fatalf("peak %d workers, %d live; want %d", a.peak, len(a.live), tc.want)
			}
			if tc.tasks > tc.max && (a.denied == 0 || a.denied > (3*tc.max+10)/5+1) {
				t.Fatalf("%d refused starts: want some, at most one per %v", a.denied, h.s.cfg.ScalingRetry)
			}
			// Every task finishes: the groups go, one per check.
			for _, m := range h.take() {
				if tk, ok := m.msg.(*protocol.Task); ok {
					h.result(string(m.to), string(tk.TaskID), protocol.ResultSuccess)
				}
			}
			for i := 0; i < 3*tc.max && len(a.live) > 0; i++ {
				h.advance(time.Second)
				a.serve()
				for _, m := range h.take() { // tasks placed on the remaining workers
					if tk, ok := m.msg.(*protocol.Task); ok {
						h.result(string(m.to), string(tk.TaskID), protocol.ResultSuccess)
					}
				}
			}
			if len(a.live) != 0 || len(groups(h)) != 0 || len(h.s.tasks) != 0 {
				t.Fatalf("after the load: %d groups at the adapter, scheduler lists %v, %d tasks", len(a.live), groups(h), len(h.s.tasks))
			}
			checkInvariants(t, h.s)
		})
	}
}

// TestScalingGoneGroup: a group whose worker died is shut down (the
// adapter frees it) before a replacement is asked for, even while tasks
// wait.
func TestScalingGoneGroup(t *testing.T) {
	h := scalingHarness(t)
	h.client("c")
	h.submit("c", "t1")
	h.submit("c", "t2")
	h.advance(time.Second)
	equal(t, "start", h.scales(), []string{"start_worker_group"})
	h.answer(started("g1", "w1"))
	h.worker("w1", 10)
	h.advance(time.Second)
	equal(t, "2 tasks, 1 worker: another", h.scales(), []string{"start_worker_group"})
	h.answer(started("g2", "w2"))
	h.worker("w2", 10)
	h.handle("w1", &protocol.DisconnectRequest{Worker: []byte("w1")}) // killed; its task goes back
	h.advance(time.Second)
	equal(t, "dead group first", h.scales(), []string{"shutdown(g1)"})
	h.answer(shutDown)
	h.advance(time.Second)
	equal(t, "then a replacement", h.scales(), []string{"start_worker_group"})
	equal(t, "groups", groups(h), []string{"g2:w2"})
	checkInvariants(t, h.s)
}

// TestScalingFailureLog: a failure that repeats is logged once at WARN or
// ERROR, then at DEBUG until scalingLogEvery has passed; the success after
// failures says how many there were.
func TestScalingFailureLog(t *testing.T) {
	h, buf := scalingHarnessLogged(t)
	h.submit("c", "t1")
	loud := func() int {
		n := 0
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, "scaling:") && (strings.HasPrefix(l, "[WARN]") || strings.HasPrefix(l, "[EROR]")) {
				n++
			}
		}
		return n
	}
	fail := func(r ScaleResponse) {
		t.Helper()
		h.advance(h.s.cfg.ScalingRetry)
		equal(t, "retried", h.scales(), []string{"start_worker_group"})
		h.answer(r)
	}
	refused := ScaleResponse{Status: 429, Message: "Maximum number of workers (4) reached."}
	for i := 0; i < 5; i++ {
		fail(refused)
	}
	if n := loud(); n != 1 {
		t.Fatalf("5 identical refusals: %d WARN/ERROR lines, want 1:\n%s", n, buf.String())
	}
	fail(ScaleResponse{Status: 500, Message: "boom"})
	fail(ScaleResponse{Err: "connection refused"})
	fail(ScaleResponse{Err: "connection refused"})
	if n := loud(); n != 3 {
		t.Fatalf("two new kinds of failure: %d lines, want 3:\n%s", n, buf.String())
	}
	h.advance(scalingLogEvery)
	h.scales()
	h.answer(ScaleResponse{Err: "connection refused"})
	if n := loud(); n != 4 || !strings.Contains(buf.String(), "repeated=") {
		t.Fatalf("after %v the repeat is logged again: %d lines:\n%s", scalingLogEvery, n, buf.String())
	}
	fail(started("g1", "w1"))
	if !strings.Contains(buf.String(), "the adapter webhook answers again") || !strings.Contains(buf.String(), "failed_calls=9") {
		t.Fatalf("no recovery line:\n%s", buf.String())
	}
}

// TestScalingUnknownGroup: a 404 to a shutdown (the adapter was restarted
// and lost its groups) forgets the group, so the reaping rule does not ask
// forever and new groups can start.
func TestScalingUnknownGroup(t *testing.T) {
	h := scalingAsked(t)
	h.answer(started("g1", "w1"))
	h.worker("w1", 10)
	h.advance(time.Second)
	equal(t, "settled", h.scales(), nil)
	h.handle("w1", &protocol.DisconnectRequest{Worker: []byte("w1")}) // the adapter died with its worker
	h.advance(time.Second)
	equal(t, "reap", h.scales(), []string{"shutdown(g1)"})
	h.answer(ScaleResponse{Status: 404, Message: "Worker group with ID g1 does not exist."})
	equal(t, "forgotten", groups(h), nil)
	h.advance(time.Second)
	equal(t, "a new group at once", h.scales(), []string{"start_worker_group"})
}

// TestScalingIdleTime: an idle group is shut down only once its workers
// have had no task for ScalingIdle, counted from when it settled or last
// had a task, including a task that came and went between two checks.
func TestScalingIdleTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		// load runs after the group settled, at the given seconds;
		// "hold" keeps a task on its worker across one check, "flash"
		// assigns and finishes one between two checks.
		load map[int]string
		want int // seconds after settling at which it is shut down
	}{
		{name: "idle from the start", want: 30},
		{name: "a task held at 10 s", load: map[int]string{10: "hold"}, want: 40},
		{name: "a task between two checks at 20 s", load: map[int]string{20: "flash"}, want: 50},
		{name: "load hovering every 20 s", load: map[int]string{15: "flash", 35: "flash", 55: "hold"}, want: 85},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.Scaling = true
				c.ClientTimeout, c.WorkerTimeout = time.Hour, time.Hour
				c.BalanceInterval = time.Hour
				c.ScalingIdle = 30 * time.Second
			})
			h.client("c")
			h.submit("c", "t0")
			h.advance(time.Second)
			equal(t, "start", h.scales(), []string{"start_worker_group"})
			h.answer(started("g1", "w1"))
			h.worker("w1", 10)
			h.result("w1", "t0", protocol.ResultSuccess)
			h.take()
			h.advance(time.Second) // settles: idle from here
			equal(t, "settled", h.scales(), nil)
			n := 0
			for sec := 1; sec <= 120; sec++ {
				switch tc.load[sec] {
				case "hold":
					n++
					h.submit("c", "h"+strconv.Itoa(n))
					h.advance(time.Second)
					h.result("w1", "h"+strconv.Itoa(n), protocol.ResultSuccess)
				case "flash":
					n++
					h.submit("c", "f"+strconv.Itoa(n))
					h.result("w1", "f"+strconv.Itoa(n), protocol.ResultSuccess)
					h.advance(time.Second)
				default:
					h.advance(time.Second)
				}
				h.take()
				if got := h.scales(); len(got) > 0 {
					equal(t, "shut down", got, []string{"shutdown(g1)"})
					if sec != tc.want {
						t.Fatalf("shut down %d s after settling, want %d", sec, tc.want)
					}
					return
				}
			}
			t.Fatal("never shut down")
		})
	}
}

// TestScalingStartsBackToBack: when the last worker of a connecting group
// registers, the next group is asked for at the next tick, not a whole
// ScalingInterval later; a peak of N workers comes that much sooner.
func TestScalingStartsBackToBack(t *testing.T) {
	h := scalingHarness(t)
	h.client("c")
	for i := 0; i < 10; i++ {
		h.submit("c", "t"+strconv.Itoa(i))
	}
	h.advance(time.Second)
	equal(t, "start", h.scales(), []string{"start_worker_group"})
	h.answer(started("g1", "w1"))
	h.advance(100 * time.Millisecond)
	equal(t, "connecting", h.scales(), nil)
	h.worker("w1", 10)
	h.advance(100 * time.Millisecond) // one server tick
	equal(t, "the next group at once", h.scales(), []string{"start_worker_group"})
	checkInvariants(t, h.s)
}

// TestScalingCountsRestartedWorkers: a worker that a cluster started in
// place of a group's worker (its heartbeat's Slot names that worker) fills
// the dead one's place in the group: the group is no longer starting, is
// busy while the stand-in runs a task, is not gone, and lists the stand-in.
// The named worker counts for itself while it is registered.
func TestScalingCountsRestartedWorkers(t *testing.T) {
	standIn := func(h *harness, id, slot string) {
		h.handle(id, &protocol.WorkerHeartbeat{QueueSize: 1, Slot: []byte(slot)})
	}
	t.Run("starting", func(t *testing.T) {
		h := scalingHarness(t)
		h.client("c")
		for _, id := range []string{"t1", "t2", "t3"} {
			h.submit("c", id)
		}
		h.advance(time.Second)
		equal(t, "start", h.scales(), []string{"start_worker_group"})
		h.answer(started("g1", "w1", "w2"))
		h.worker("w1", 1)
		standIn(h, "x", "w1") // names a registered worker: w1 counts, not x
		h.advance(time.Second)
		equal(t, "w2 has not connected: no other start", h.scales(), nil)
		equal(t, "groups", groups(h), []string{"g1:w1,w2"})
		standIn(h, "w2b", "w2") // w2 died starting; the cluster started w2b
		h.advance(time.Second)
		equal(t, "3 tasks, 3 workers, the group up", h.scales(), nil)
		equal(t, "groups", groups(h), []string{"g1:w1,w2b"})
		h.submit("c", "t4")
		h.advance(time.Second)
		equal(t, "4 tasks, 3 workers: another", h.scales(), []string{"start_worker_group"})
		checkInvariants(t, h.s)
	})
	t.Run("busy, then idle", func(t *testing.T) {
		h := scalingAsked(t)
		h.answer(started("g1", "w1"))
		h.worker("w1", 1)
		equal(t, "t1 on w1", describe(noEchoes(h.take())), []string{"w1:Task(t1)"})
		h.advance(time.Second)
		equal(t, "the group is up", h.scales(), nil)
		h.s.PeerClosed([]byte("w1"), h.now) // killed; the cluster starts w1b
		standIn(h, "w1b", "w1")
		equal(t, "t1 on w1b", describe(noEchoes(h.take())), []string{"w1b:Task(t1)"})
		h.advance(time.Second)
		equal(t, "w1b runs t1: the group is neither gone nor idle", h.scales(), nil)
		equal(t, "groups", groups(h), []string{"g1:w1b"})
		h.result("w1b", "t1", protocol.ResultSuccess)
		h.advance(time.Second)
		equal(t, "idle now", h.scales(), []string{"shutdown(g1)"})
		h.answer(shutDown)
		h.s.PeerClosed([]byte("w1b"), h.now)
		h.advance(time.Second)
		equal(t, "groups", groups(h), nil)
		checkInvariants(t, h.s)
	})
}
