package slurm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/adapter"
	"github.com/opengris/scaler/internal/scalertest/wait"
)

// The slot accounting, step by step: each row applies one operation and
// checks the slots taken and the groups listed afterwards.
func TestTable(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type op struct {
		do      string // reserve, unreserve, add <id>, shutdown <group>, observe
		queue   map[string]string
		asOf    time.Time
		err     string // expected error kind: limit, unknown
		cancel  bool   // shutdown: scancel needed
		slots   int    // live jobs + reserved afterwards
		groups  int
		changes int
	}
	cases := []struct {
		name string
		max  int
		ops  []op
	}{
		{"limit counts reserved submissions", 2, []op{
			{do: "reserve", slots: 1}, {do: "reserve", slots: 2}, {do: "reserve", err: "limit", slots: 2},
			{do: "unreserve", slots: 1}, {do: "reserve", slots: 2},
		}},
		{"pending jobs hold their slot", 1, []op{
			{do: "reserve", slots: 1}, {do: "add 1", slots: 1, groups: 1},
			{do: "observe", queue: map[string]string{"1": "PENDING"}, asOf: t0.Add(time.Second), slots: 1, groups: 1, changes: 1},
			{do: "reserve", err: "limit", slots: 1, groups: 1},
			{do: "observe", queue: map[string]string{"1": "PENDING"}, asOf: t0.Add(2 * time.Second), slots: 1, groups: 1},
			{do: "observe", queue: map[string]string{"1": "RUNNING"}, asOf: t0.Add(3 * time.Second), slots: 1, groups: 1, changes: 1},
		}},
		{"a job Slurm ended frees its slot, its group stays until shut down", 1, []op{
			{do: "reserve", slots: 1}, {do: "add 1", slots: 1, groups: 1},
			{do: "observe", queue: map[string]string{}, asOf: t0.Add(time.Second), slots: 0, groups: 1, changes: 1},
			{do: "reserve", slots: 1, groups: 1},
			{do: "shutdown slurm-1", cancel: false, slots: 1, groups: 0},
			{do: "shutdown slurm-1", err: "unknown", slots: 1},
		}},
		{"a listing taken before sbatch answered does not end the job", 1, []op{
			{do: "reserve", slots: 1}, {do: "add 1", slots: 1, groups: 1},
			{do: "observe", queue: map[string]string{}, asOf: t0.Add(-time.Millisecond), slots: 1, groups: 1},
		}},
		{"a cancelled job holds its slot until squeue drops it", 1, []op{
			{do: "reserve", slots: 1}, {do: "add 1", slots: 1, groups: 1},
			{do: "shutdown slurm-1", cancel: true, slots: 1, groups: 0},
			{do: "reserve", err: "limit", slots: 1},
			{do: "observe", queue: map[string]string{"1": "COMPLETING"}, asOf: t0.Add(time.Second), slots: 1, changes: 1},
			{do: "observe", queue: map[string]string{"2": "RUNNING"}, asOf: t0.Add(2 * time.Second), slots: 0, changes: 1},
			{do: "reserve", slots: 1},
		}},
		{"no limit", -1, []op{
			{do: "reserve", slots: 1}, {do: "reserve", slots: 2}, {do: "reserve", slots: 3},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(tc.max)
			for i, o := range tc.ops {
				var err error
				var cancel bool
				changes := 0
				switch {
				case o.do == "reserve":
					err = tb.reserve()
				case o.do == "unreserve":
					tb.unreserve()
				case o.do == "observe":
					changes = len(tb.observe(o.queue, o.asOf))
				case len(o.do) > 4 && o.do[:4] == "add ":
					id := o.do[4:]
					tb.added(&job{id: id, group: GroupID(id), submitted: t0})
				case len(o.do) > 9 && o.do[:9] == "shutdown ":
					_, cancel, err = tb.shutdown(o.do[9:])
				}
				var limit *adapter.LimitError
				var unknown *adapter.UnknownGroupError
				switch o.err {
				case "":
					if err != nil {
						t.Fatalf("op %d %s: %v", i, o.do, err)
					}
				case "limit":
					if !errors.As(err, &limit) {
						t.Fatalf("op %d %s: %v, want a limit", i, o.do, err)
					}
				case "unknown":
					if !errors.As(err, &unknown) {
						t.Fatalf("op %d %s: %v, want unknown group", i, o.do, err)
					}
				}
				if slots := len(tb.live) + tb.reserved; slots != o.slots || len(tb.groups) != o.groups || cancel != o.cancel || changes != o.changes {
					t.Fatalf("op %d %s: slots %d groups %d cancel %v changes %d, want %d %d %v %d",
						i, o.do, slots, len(tb.groups), cancel, changes, o.slots, o.groups, o.cancel, o.changes)
				}
			}
		})
	}
}

// fakeSlurm is a controller in memory: submitted jobs are listed until
// cancelled or ended; it records the most jobs listed at once.
type fakeSlurm struct {
	mu        sync.Mutex
	next      int
	jobs      map[string]string
	submits   int
	cancelled []string
	maxListed int
	delay     time.Duration // each sbatch takes this long
	failNext  error
	termed    []string // jobs whose batch script got SIGTERM
	deaf      bool     // SIGTERM does not end a job
}

func (f *fakeSlurm) Terminate(ctx context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if f.jobs[id] != "RUNNING" {
			return fmt.Errorf("scancel: error: Kill job error on job id %s: Job is pending execution", id)
		}
	}
	for _, id := range ids {
		f.termed = append(f.termed, id)
		if !f.deaf {
			delete(f.jobs, id) // its cluster stopped its workers and exited
		}
	}
	return nil
}

func (f *fakeSlurm) start(id string) {
	f.mu.Lock()
	f.jobs[id] = "RUNNING"
	f.mu.Unlock()
}

func (f *fakeSlurm) record() (cancelled, termed []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cancelled...), append([]string(nil), f.termed...)
}

func newFake() *fakeSlurm { return &fakeSlurm{next: 100, jobs: map[string]string{}} }

func (f *fakeSlurm) Submit(ctx context.Context, args []string, script string) (string, error) {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return "", err
	}
	f.next++
	f.submits++
	id := strconv.Itoa(f.next)
	f.jobs[id] = "PENDING"
	if len(f.jobs) > f.maxListed {
		f.maxListed = len(f.jobs)
	}
	return id, nil
}

func (f *fakeSlurm) Cancel(ctx context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if _, ok := f.jobs[id]; !ok {
			return fmt.Errorf("scancel: Invalid job id %s", id)
		}
		delete(f.jobs, id)
		f.cancelled = append(f.cancelled, id)
	}
	return nil
}

func (f *fakeSlurm) Queue(ctx context.Context, name string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for id, s := range f.jobs {
		out[id] = s
	}
	return out, nil
}

func (f *fakeSlurm) end(id string) {
	f.mu.Lock()
	delete(f.jobs, id)
	f.mu.Unlock()
}

func (f *fakeSlurm) listed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.jobs)
}

func newAdapter(f *fakeSlurm, max int) *Adapter {
	s := spec()
	return New(Options{Spec: s, MaxJobs: max, Poll: 10 * time.Millisecond, StopWait: 5 * time.Second, StopGrace: 200 * time.Millisecond, Slurm: f}, zerolog.Nop())
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.Until(t, 10*time.Second, what, cond)
}

// Concurrent starts never submit more than --max-jobs, whatever the timing.
func TestConcurrentStartsStayUnderTheLimit(t *testing.T) {
	f := newFake()
	f.delay = 20 * time.Millisecond
	a := newAdapter(f, 3)
	defer a.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.StartGroup(context.Background())
			mu.Lock()
			defer mu.Unlock()
			var limit *adapter.LimitError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &limit):
				refused++
			default:
				t.Errorf("start: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 3 || refused != 17 || f.maxListed != 3 {
		t.Errorf("%d started, %d refused, %d listed at most; want 3, 17, 3", ok, refused, f.maxListed)
	}
}

func TestStartShutdownAndJobsSlurmEnds(t *testing.T) {
	f := newFake()
	a := newAdapter(f, 2)
	g1, err := a.StartGroup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if g1.ID != "slurm-101" || len(g1.WorkerIDs) != 2 || g1.WorkerIDs[0][:len("101|Worker|slurm-101-0|")] != "101|Worker|slurm-101-0|" {
		t.Fatalf("group %+v", g1)
	}
	g2, err := a.StartGroup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Both pending: the limit holds, nothing is submitted again.
	waitFor(t, "the poll to see both pending", func() bool { j := a.Jobs(); return j["101"] == "PENDING" && j["102"] == "PENDING" })
	if _, err := a.StartGroup(context.Background()); err == nil {
		t.Fatal("a third job was submitted past --max-jobs 2")
	}
	// Slurm ends job 101 by itself (time limit): its slot frees.
	f.end("101")
	waitFor(t, "the slot of the ended job", func() bool { return len(a.Jobs()) == 1 })
	g3, err := a.StartGroup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The scheduler reaps the ended group: 200 and no scancel.
	if err := a.ShutdownGroup(g1.ID); err != nil {
		t.Fatal(err)
	}
	var unknown *adapter.UnknownGroupError
	if err := a.ShutdownGroup(g1.ID); !errors.As(err, &unknown) {
		t.Fatalf("second shutdown: %v", err)
	}
	// A shutdown cancels the job.
	if err := a.ShutdownGroup(g2.ID); err != nil {
		t.Fatal(err)
	}
	if len(f.cancelled) != 1 || f.cancelled[0] != "102" {
		t.Fatalf("cancelled %v", f.cancelled)
	}
	// A job that ended between the poll and the shutdown: scancel fails,
	// squeue no longer lists it, so the shutdown succeeds.
	f.end("103")
	if err := a.ShutdownGroup(g3.ID); err != nil {
		t.Fatalf("shutdown of a job that just ended: %v", err)
	}
	if f.submits != 3 {
		t.Errorf("%d submissions, want 3", f.submits)
	}
	a.Close()
}

func TestSubmitFailureGivesTheSlotBack(t *testing.T) {
	f := newFake()
	a := newAdapter(f, 1)
	defer a.Close()
	f.failNext = errors.New("sbatch: error: Batch job submission failed: Invalid partition name specified")
	if _, err := a.StartGroup(context.Background()); err == nil {
		t.Fatal("no error")
	}
	if _, err := a.StartGroup(context.Background()); err != nil {
		t.Fatalf("the failed submission kept its slot: %v", err)
	}
}

// A running job is stopped by SIGTERM to its cluster, which stops its
// workers in order; one still listed StopGrace later is cancelled outright.
func TestRunningJobsGetSIGTERMThenScancel(t *testing.T) {
	for _, deaf := range []bool{false, true} {
		f := newFake()
		f.deaf = deaf
		a := newAdapter(f, -1)
		g, err := a.StartGroup(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f.start("101")
		waitFor(t, "the poll to see it running", func() bool { return a.Jobs()["101"] == "RUNNING" })
		if err := a.ShutdownGroup(g.ID); err != nil {
			t.Fatal(err)
		}
		cancelled, termed := f.record()
		if len(termed) != 1 || len(cancelled) != 0 {
			t.Fatalf("deaf=%v: termed %v cancelled %v, want a SIGTERM only", deaf, termed, cancelled)
		}
		waitFor(t, "the job to leave", func() bool { return f.listed() == 0 && len(a.Jobs()) == 0 })
		cancelled, _ = f.record()
		if want := map[bool]int{false: 0, true: 1}[deaf]; len(cancelled) != want {
			t.Errorf("deaf=%v: cancelled %v, want %d scancel", deaf, cancelled, want)
		}
		a.Close()
	}
}

func TestCloseCancelsEveryJob(t *testing.T) {
	f := newFake()
	a := newAdapter(f, -1)
	for i := 0; i < 3; i++ {
		if _, err := a.StartGroup(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	f.start("102")
	waitFor(t, "the poll to see it running", func() bool { return a.Jobs()["102"] == "RUNNING" })
	a.Close()
	cancelled, termed := f.record()
	if f.listed() != 0 || len(cancelled) != 2 || len(termed) != 1 || termed[0] != "102" {
		t.Fatalf("after Close: %d jobs listed, cancelled %v, SIGTERM %v", f.listed(), cancelled, termed)
	}
	if _, err := a.StartGroup(context.Background()); err == nil {
		t.Fatal("started after Close")
	}
}

// A job that started after the last poll (the table still says PENDING)
// gets SIGTERM to its cluster too, not a plain scancel, which would signal
// its starting processors as well and make its worker report a failed
// start (seen once in 4 CI runs against the real Slurm).
func TestJobStartedSinceThePollGetsSIGTERM(t *testing.T) {
	f := newFake()
	a := New(Options{Spec: spec(), MaxJobs: -1, Poll: time.Hour, StopWait: 5 * time.Second, StopGrace: time.Hour, Slurm: f}, zerolog.Nop())
	defer a.Close()
	g, err := a.StartGroup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s := a.Jobs()["101"]; s == "RUNNING" {
		t.Fatalf("the table says %q before any poll", s)
	}
	f.start("101")
	if err := a.ShutdownGroup(g.ID); err != nil {
		t.Fatal(err)
	}
	if cancelled, termed := f.record(); len(termed) != 1 || len(cancelled) != 0 {
		t.Fatalf("termed %v cancelled %v, want a SIGTERM only", termed, cancelled)
	}
}
