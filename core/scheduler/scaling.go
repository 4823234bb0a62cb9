package scheduler

import (
	"fmt"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// The scaling controller (reference §8, checklist 66-67) asks a worker
// adapter, through its webhook, to start worker groups when tasks pile up
// and to shut idle groups down. The decision is made here; the owner of the
// Scheduler performs the HTTP call (Outbox.Scale) off the scheduler's
// goroutine and hands the answer back with OnScaleResponse.
//
// Policy, checked every ScalingInterval while no webhook call is
// outstanding (at most one at a time), first rule that applies:
//
//  1. shut down a group that has settled and none of whose workers is
//     registered any more (killed, timed out): the adapter frees it and
//     the scheduler stops listing it;
//  2. start a group when there are more tasks than workers (each worker
//     runs one task at a time, so every task beyond that waits), unless
//     the last group started is still connecting;
//  3. shut down one group when no task waits and there are fewer tasks
//     than workers (or none at all): among the groups whose workers have
//     all connected (or whose start timed out) and hold no task, the one
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

// workerGroup is a group the adapter started for us.
type workerGroup struct {
	id        string
	workers   []string
	startedAt time.Time
	seqAt     uint64 // workers.nextSeq when it was started
	starting  bool   // its workers have not all connected yet
}

type scaling struct {
	groups    []*workerGroup // in start order
	nextID    uint64
	inFlight  *ScaleRequest
	reason    string
	notBefore time.Time
	nextCheck time.Time
	// Failure log rate limit: the last failure logged, when, and how many
	// identical failures were not logged since.
	failKey    string
	failLogged time.Time
	failQuiet  int
	failTotal  int // failures since the last success
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
		if key == sc.failKey && now.Sub(sc.failLogged) < scalingLogEvery {
			sc.failQuiet++
			ev = s.log.Debug()
		} else {
			if key == sc.failKey && sc.failQuiet > 0 {
				ev = ev.Int("repeated", sc.failQuiet)
			}
			sc.failKey, sc.failLogged, sc.failQuiet = key, now, 0
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
		sc.failKey, sc.failQuiet, sc.failTotal = "", 0, 0
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
		default:
			succeeded()
			g := &workerGroup{id: r.GroupID, workers: r.WorkerIDs, startedAt: now, seqAt: s.workers.nextSeq, starting: true}
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
// id registered; with no ids listed, any worker registered since) or the
// start timeout passed.
func (s *Scheduler) updateStarting(g *workerGroup, now time.Time) {
	if !g.starting {
		return
	}
	connected := s.workers.nextSeq > g.seqAt
	if len(g.workers) > 0 {
		connected = true
		for _, id := range g.workers {
			if s.workers.byID[id] == nil {
				connected = false
				break
			}
		}
	}
	if connected {
		g.starting = false
		return
	}
	if now.Sub(g.startedAt) >= s.cfg.ScalingStartTimeout {
		g.starting = false
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
	}
	if sc.inFlight != nil || now.Before(sc.notBefore) {
		return
	}
	tasks, workers := len(s.tasks), len(s.workers.order)
	if g := s.goneGroup(); g != nil {
		s.requestScale(ScaleShutdown, g.id, "its workers are gone ("+counts(tasks, workers)+")")
		return
	}
	if tasks > workers {
		if starting {
			return // the last group is still coming up
		}
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
	if g := s.idlestGroup(); g != nil {
		s.requestScale(ScaleShutdown, g.id, "fewer tasks than workers ("+counts(tasks, workers)+")")
	}
}

// goneGroup is the oldest settled group that listed its workers and none
// of them is registered now; nil if none.
func (s *Scheduler) goneGroup() *workerGroup {
	for _, g := range s.scaling.groups {
		if g.starting || len(g.workers) == 0 {
			continue
		}
		gone := true
		for _, id := range g.workers {
			if s.workers.byID[id] != nil {
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

func counts(tasks, workers int) string { return fmt.Sprintf("%d tasks, %d workers", tasks, workers) }

// idlestGroup is the settled group whose live workers hold no task and
// report the fewest queued tasks (oldest first on ties); nil if none.
func (s *Scheduler) idlestGroup() *workerGroup {
	var best *workerGroup
	var bestQueued uint64
	for _, g := range s.scaling.groups {
		if g.starting {
			continue
		}
		var queued uint64
		busy := false
		for _, id := range g.workers {
			if w := s.workers.byID[id]; w != nil {
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
		for j, w := range g.workers {
			ids[j] = []byte(w)
		}
		out[i] = protocol.WorkerGroup{GroupID: []byte(g.id), WorkerIDs: ids}
	}
	return out
}
