package scheduler

import (
	"fmt"
	"time"

	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/protocol"
)

// The scaling controller (reference §8, checklist 66-67) asks a worker
// adapter, through its webhook, to start worker groups when tasks pile up
// and to shut idle groups down. The decision is made here; the owner of the
// Scheduler performs the HTTP call (Outbox.Scale) off the scheduler's
// goroutine and hands the answer back with OnScaleResponse.
//
// Policy, checked every ScalingInterval, and at the next Tick after a
// worker registers (it may complete a connecting group: the next group is
// asked for without waiting out the interval), while no webhook call is
// outstanding (at most one at a time), first rule that applies:
//
//  1. shut down a group that has settled and none of whose workers is
//     registered any more (killed, timed out), or whose start answer was
//     refused (no worker ids, or beyond the bounds below): the adapter
//     frees it and the scheduler stops listing it;
//  2. start a group when there are more tasks than workers (each worker
//     runs one task at a time, so every task beyond that waits), unless
//     the last group started is still connecting or maxWorkerGroups are
//     listed;
//  3. shut down one group when no task waits and there are fewer tasks
//     than workers (or none at all): among the groups whose workers have
//     all connected (or whose start timed out) and have had no task for
//     ScalingIdle (no hysteresis, and a load hovering around the worker
//     count would start and stop workers every few seconds), the one
//     whose workers report the fewest queued tasks, oldest first on ties.
//
// So with an adapter that allows N workers and at least N tasks, N workers
// run: the adapter's 429 ("maximum reached") is the only cap. 1.12.5 starts
// a group only above 10 tasks per worker, so 15 tasks on 10 allowed workers
// got 2; that flaw is not copied.
//
// Unlike 1.12.5 it does not ask for another group while the workers of the
// last one are still connecting (up to ScalingStartTimeout), never shuts
// down a group whose workers run tasks, backs off ScalingRetry after a
// failed call, forgets a group the adapter answers 404 for (it cannot be
// shut down, and keeping it would block rule 1), and survives any answer.
// A failure is logged once; the same
// failure again (same action, same status or error) is logged at DEBUG,
// with a summary at most every scalingLogEvery, and the first success after
// failures says how many there were.

// ScaleAction is what a scaling request asks of the adapter.
type ScaleAction uint8

const (
	// ScaleStart asks for a new worker group:
	// POST {"action": "start_worker_group"}.
	ScaleStart ScaleAction = iota + 1
	// ScaleShutdown asks to stop a group:
	// POST {"action": "shutdown_worker_group", "worker_group_id": GroupID}.
	ScaleShutdown
)

func (a ScaleAction) String() string {
	switch a {
	case ScaleStart:
		return "start_worker_group"
	case ScaleShutdown:
		return "shutdown_worker_group"
	}
	return "unknown"
}

// ScaleRequest is one webhook call the owner must make.
type ScaleRequest struct {
	ID      uint64 // echoed in the ScaleResponse
	Action  ScaleAction
	GroupID string // ScaleShutdown only
}

// ScaleResponse is the outcome of a ScaleRequest.
type ScaleResponse struct {
	ID uint64
	// Status is the HTTP status code; 0 when no answer was read (Err says
	// why: connection refused, timeout, ...).
	Status int
	Err    string
	// GroupID and WorkerIDs are the start answer's worker_group_id and
	// worker_ids.
	GroupID   string
	WorkerIDs []string
	// Message is the answer's "error" (or "status") text, for the log.
	Message string
}

// scalingLogEvery: a failure that repeats is logged at WARN/ERROR at most
// this often.
const scalingLogEvery = time.Minute

// Bounds on what an adapter's answer may make the scheduler keep (each
// group is carried in every StateScheduler): the groups listed, the worker
// ids of one group and the length of an id. An answer beyond them is
// refused; a started group beyond them is shut down again.
const (
	maxWorkerGroups = 1024 // the native adapter's own bound
	maxGroupWorkers = 256
	maxScalingIDLen = 512 // bytes, group and worker ids alike
)

// workerGroup is a group the adapter started for us.
type workerGroup struct {
	id        string
	workers   []string
	startedAt time.Time
	starting  bool // its workers have not all connected yet
	// busyAt is when the group was last seen with a task (or settled);
	// assigned the sum of its workers' assigned counts then.
	busyAt   time.Time
	assigned uint64
	refused  bool // its start answer was refused: shut it down first
}

type scaling struct {
	groups    []*workerGroup // in start order
	nextID    uint64
	inFlight  *ScaleRequest
	reason    string
	notBefore time.Time
	nextCheck time.Time
	// Failure log rate limit: identical failures are logged once a
	// scalingLogEvery, with the count of those held back.
	failLog   logging.Repeats
	failTotal int  // failures since the last success
	full      bool // maxWorkerGroups reached (logged once until below)
}

// OnScaleResponse applies the answer to the last ScaleRequest. Answers to
// anything else are logged and dropped.
func (s *Scheduler) OnScaleResponse(r ScaleResponse, now time.Time) {
	sc := &s.scaling
	req := sc.inFlight
	if req == nil || req.ID != r.ID {
		s.log.Warn().Uint64("request", r.ID).Msg("scaling: answer to an unknown webhook request dropped")
		return
	}
	sc.inFlight = nil
	failed := func(what string) {
		sc.notBefore = now.Add(s.cfg.ScalingRetry)
		sc.failTotal++
		key := req.Action.String() + "/" + fmt.Sprint(r.Status) + "/" + what
		ev := s.log.Warn()
		if r.Status == 500 || r.Status == 0 {
			ev = s.log.Error()
		}
		sc.failLog.Every = scalingLogEvery
		if loud, repeated := sc.failLog.Allow(key, now); !loud {
			ev = s.log.Debug()
		} else if repeated > 0 {
			ev = ev.Int("repeated", repeated)
		}
		ev = ev.Str("action", req.Action.String())
		if req.GroupID != "" {
			ev = ev.Str("group", req.GroupID)
		}
		if r.Status != 0 {
			ev = ev.Int("status", r.Status)
		}
		if r.Err != "" {
			ev = ev.Str("error", r.Err)
		}
		if r.Message != "" {
			ev = ev.Str("message", r.Message)
		}
		ev.Str("reason", sc.reason).Str("retry_in", s.cfg.ScalingRetry.String()).Msg("scaling: " + what)
	}
	succeeded := func() {
		if sc.failTotal > 0 {
			s.log.Info().Int("failed_calls", sc.failTotal).Msg("scaling: the adapter webhook answers again")
		}
		sc.failLog.Reset()
		sc.failTotal = 0
	}
	ok := r.Err == "" && r.Status >= 200 && r.Status < 300
	switch req.Action {
	case ScaleStart:
		switch {
		case r.Err != "":
			failed("adapter webhook call failed; no worker group started")
		case r.Status == 429:
			failed("adapter refused to start a worker group: too many workers")
		case !ok:
			failed("adapter could not start a worker group")
		case r.GroupID == "":
			failed("adapter answer lacks worker_group_id; no worker group recorded")
		case len(r.GroupID) > maxScalingIDLen:
			failed(fmt.Sprintf("adapter answer's worker_group_id is longer than %d bytes; no worker group recorded", maxScalingIDLen))
		case badWorkerIDs(r.WorkerIDs) != "":
			// Without usable worker ids the group's workers cannot be told
			// from others (is it busy? gone?), and an adapter that starts
			// nothing would get a group recorded every start timeout,
			// forever. Keep it only to shut it down (rule 1).
			failed("adapter answer " + badWorkerIDs(r.WorkerIDs) + "; shutting the worker group down")
			s.forgetGroup(r.GroupID)
			sc.groups = append(sc.groups, &workerGroup{id: r.GroupID, startedAt: now, refused: true})
		default:
			succeeded()
			g := &workerGroup{id: r.GroupID, workers: r.WorkerIDs, startedAt: now, starting: true}
			s.forgetGroup(g.id)
			sc.groups = append(sc.groups, g)
			s.updateStarting(g, now)
			s.log.Info().Str("group", g.id).Strs("workers", g.workers).Str("reason", sc.reason).
				Msg("scaling: started worker group")
		}
	case ScaleShutdown:
		if r.Err == "" && r.Status == 404 {
			// The adapter does not know the group (it was restarted, or
			// the group went another way): asking again cannot succeed,
			// and keeping it would have rule 1 ask forever instead of
			// starting workers. 1.12.5 kept it.
			failed("adapter does not know the worker group; forgetting it")
			sc.notBefore = time.Time{}
			s.forgetGroup(req.GroupID)
			return
		}
		if !ok {
			// 500 and anything else keep the group; it is asked again.
			failed("adapter could not shut the worker group down; keeping it")
			return
		}
		succeeded()
		s.forgetGroup(req.GroupID)
		s.log.Info().Str("group", req.GroupID).Str("reason", sc.reason).Msg("scaling: shut down worker group")
	}
}

// badWorkerIDs says what is wrong with a start answer's worker_ids; "" if
// nothing.
func badWorkerIDs(ids []string) string {
	if len(ids) == 0 {
		return "lists no worker_ids"
	}
	if len(ids) > maxGroupWorkers {
		return fmt.Sprintf("lists %d worker_ids, more than %d", len(ids), maxGroupWorkers)
	}
	for _, id := range ids {
		if len(id) > maxScalingIDLen || id == "" {
			return fmt.Sprintf("has a worker id that is empty or longer than %d bytes", maxScalingIDLen)
		}
	}
	return ""
}

func (s *Scheduler) forgetGroup(id string) {
	gs := s.scaling.groups
	for i, g := range gs {
		if g.id == id {
			s.scaling.groups = append(gs[:i], gs[i+1:]...)
			return
		}
	}
}

// updateStarting clears g.starting once its workers are there (every listed
// id registered) or the start timeout passed.
func (s *Scheduler) updateStarting(g *workerGroup, now time.Time) {
	if !g.starting {
		return
	}
	connected := true
	for _, id := range g.workers {
		if s.groupMember(id) == nil {
			connected = false
			break
		}
	}
	if connected {
		g.starting, g.busyAt = false, now
		return
	}
	if now.Sub(g.startedAt) >= s.cfg.ScalingStartTimeout {
		g.starting, g.busyAt = false, now
		s.log.Warn().Str("group", g.id).Strs("workers", g.workers).Dur("waited", now.Sub(g.startedAt)).
			Msg("scaling: workers of the started group did not all connect; no longer waiting for them")
	}
}

// scale runs the policy; called from Tick.
func (s *Scheduler) scale(now time.Time) {
	sc := &s.scaling
	if !s.cfg.Scaling || now.Before(sc.nextCheck) {
		return
	}
	sc.nextCheck = now.Add(s.cfg.ScalingInterval)
	starting := false
	for _, g := range sc.groups {
		s.updateStarting(g, now)
		starting = starting || g.starting
		s.updateBusy(g, now)
	}
	if sc.inFlight != nil || now.Before(sc.notBefore) {
		return
	}
	tasks, workers := len(s.tasks), len(s.workers.order)
	if g := s.goneGroup(); g != nil {
		why := "its workers are gone"
		if g.refused {
			why = "its start answer was refused"
		}
		s.requestScale(ScaleShutdown, g.id, why+" ("+counts(tasks, workers)+")")
		return
	}
	if tasks > workers {
		if starting {
			return // the last group is still coming up
		}
		if len(sc.groups) >= maxWorkerGroups {
			if !sc.full {
				sc.full = true
				s.log.Warn().Int("groups", len(sc.groups)).Msg("scaling: as many worker groups as the scheduler lists; no more starts until some are shut down")
			}
			return
		}
		sc.full = false
		reason := "more tasks than workers"
		if workers == 0 {
			reason = "tasks but no worker"
		}
		s.requestScale(ScaleStart, "", reason+" ("+counts(tasks, workers)+")")
		return
	}
	if s.numWaiting > 0 || (tasks > 0 && tasks >= workers) {
		return
	}
	if g := s.idlestGroup(now); g != nil {
		s.requestScale(ScaleShutdown, g.id, "fewer tasks than workers ("+counts(tasks, workers)+")")
	}
}

// updateBusy moves g.busyAt to now if a worker of g holds a task or was
// assigned one since the last check.
func (s *Scheduler) updateBusy(g *workerGroup, now time.Time) {
	var assigned uint64
	busy := false
	for _, id := range g.workers {
		if w := s.groupMember(id); w != nil {
			assigned += w.assigned
			busy = busy || w.tasks.Len() > 0
		}
	}
	if busy || assigned != g.assigned {
		g.busyAt = now
	}
	g.assigned = assigned
}

// goneGroup is the oldest settled group that listed its workers and none
// of them is registered now; nil if none.
func (s *Scheduler) goneGroup() *workerGroup {
	for _, g := range s.scaling.groups {
		if g.refused {
			return g
		}
		if g.starting {
			continue
		}
		gone := true
		for _, id := range g.workers {
			if s.groupMember(id) != nil {
				gone = false
				break
			}
		}
		if gone {
			return g
		}
	}
	return nil
}

// groupMember is the registered worker that fills the place of id in a
// worker group: the worker id itself, else the latest worker started in
// its slot (docs/protocol.md §7.2, "Restarted workers"); nil if neither.
func (s *Scheduler) groupMember(id string) *worker {
	if w := s.workers.byID[id]; w != nil {
		return w
	}
	return s.workers.bySlot[id]
}

func counts(tasks, workers int) string { return fmt.Sprintf("%d tasks, %d workers", tasks, workers) }

// idlestGroup is the settled group whose live workers have had no task for
// ScalingIdle and report the fewest queued tasks (oldest first on ties);
// nil if none.
func (s *Scheduler) idlestGroup(now time.Time) *workerGroup {
	var best *workerGroup
	var bestQueued uint64
	for _, g := range s.scaling.groups {
		if g.starting || now.Sub(g.busyAt) < s.cfg.ScalingIdle {
			continue
		}
		var queued uint64
		busy := false
		for _, id := range g.workers {
			if w := s.groupMember(id); w != nil {
				if w.tasks.Len() > 0 {
					busy = true
					break
				}
				queued += uint64(w.last.QueuedTasks)
			}
		}
		if busy {
			continue
		}
		if best == nil || queued < bestQueued {
			best, bestQueued = g, queued
		}
	}
	return best
}

func (s *Scheduler) requestScale(a ScaleAction, group, reason string) {
	sc := &s.scaling
	sc.nextID++
	req := ScaleRequest{ID: sc.nextID, Action: a, GroupID: group}
	sc.inFlight = &req
	sc.reason = reason
	s.log.Debug().Str("action", a.String()).Str("group", group).Str("reason", reason).Msg("scaling: calling the adapter webhook")
	s.out.Scale(req)
}

// WorkerGroups lists the groups the adapter started, in start order, as
// published in StateScheduler.
func (s *Scheduler) WorkerGroups() []protocol.WorkerGroup {
	if len(s.scaling.groups) == 0 {
		return nil
	}
	out := make([]protocol.WorkerGroup, len(s.scaling.groups))
	for i, g := range s.scaling.groups {
		ids := make([][]byte, len(g.workers))
		for j, id := range g.workers {
			if w := s.groupMember(id); w != nil {
				id = w.id // the worker standing in for it, if that one is gone
			}
			ids[j] = []byte(id)
		}
		out[i] = protocol.WorkerGroup{GroupID: []byte(g.id), WorkerIDs: ids}
	}
	return out
}
