package web

import (
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/monitor/feed"
)

// outcome is how the page colours a task.
type outcome uint8

const (
	outcomeRunning outcome = iota
	outcomeSuccess
	outcomeFailed
	outcomeCanceled
	outcomeOther // queued or moving: not a result
)

var outcomeNames = [...]string{"running", "success", "failed", "canceled", "other"}

func (o outcome) String() string { return outcomeNames[o] }

func outcomeOf(s protocol.TaskState) outcome {
	switch s {
	case protocol.TaskStateRunning:
		return outcomeRunning
	case protocol.TaskStateSuccess:
		return outcomeSuccess
	case protocol.TaskStateFailed, protocol.TaskStateFailedWorkerDied, protocol.TaskStateFailedTimeout,
		protocol.TaskStateFailedProcessorDied, protocol.TaskStateRejected:
		return outcomeFailed
	case protocol.TaskStateCanceled, protocol.TaskStateCanceledNotFound:
		return outcomeCanceled
	}
	return outcomeOther
}

// bar is one stretch of a worker's row in the task stream: one task, or
// several back-to-back tasks with one outcome merged.
type bar struct {
	worker     string
	start, end time.Time
	outcome    outcome
	function   string // severalFunctions when the merged tasks differ
	n          int    // tasks merged into this bar
}

// severalFunctions names the function of a bar of tasks of several.
const severalFunctions = "(several functions)"

// streamConfig bounds the task stream.
type streamConfig struct {
	Window   time.Duration // bars older than this leave the stream
	MaxBars  int           // at most this many bars are kept (oldest go first)
	MergeGap time.Duration // back-to-back tasks closer than this share a bar
}

// stream collects finished tasks from successive feed states into the bars
// of the task stream, and counts finished tasks per worker. The feed keeps
// only the newest tasks, so the stream remembers what scrolled out of it.
// Not safe for concurrent use.
type stream struct {
	cfg  streamConfig
	bars []bar
	// pruned is how many bars were ever dropped from the front, so that
	// last (absolute indexes) stays valid when bars shift.
	pruned int
	last   map[string]int      // worker -> absolute index of its newest bar
	seen   map[string]struct{} // task ids in the previous feed state's Tasks
	done   map[string]uint64   // worker -> finished tasks seen by this UI
	missed uint64              // ticks where the feed's list overflowed between two looks
}

func newStream(cfg streamConfig) *stream {
	return &stream{cfg: cfg, last: map[string]int{}, seen: map[string]struct{}{}, done: map[string]uint64{}}
}

// observe adds the tasks of st that the previous call had not seen, and
// drops bars that left the window.
func (s *stream) observe(st *feed.State, now time.Time) {
	seen := make(map[string]struct{}, len(st.Tasks))
	fresh := 0
	// Tasks are newest first; add oldest first so merging runs forward in time.
	for i := len(st.Tasks) - 1; i >= 0; i-- {
		t := &st.Tasks[i]
		seen[t.ID] = struct{}{}
		if _, ok := s.seen[t.ID]; ok {
			continue
		}
		fresh++
		s.add(t)
	}
	// Every task of the previous look still listed, and the list full of
	// new ones: some finished tasks scrolled past unseen.
	if len(s.seen) > 0 && fresh == len(st.Tasks) && fresh > 0 {
		s.missed++
	}
	s.seen = seen
	s.prune(now)
}

func (s *stream) add(t *feed.Task) {
	if t.End.IsZero() {
		return
	}
	s.done[t.Worker]++
	// Not t.Start: the scheduler reports a task Running once it is queued
	// on a worker, so Start includes time in the worker's queue. Duration
	// is the profile's run time when there is one.
	start := t.End.Add(-t.Duration)
	o := outcomeOf(t.State)
	if i, ok := s.last[t.Worker]; ok && i >= s.pruned {
		b := &s.bars[i-s.pruned]
		// While the stream is sparse every task has its own bar. When it
		// fills up (a thousand tasks a second would make bars thinner
		// than a pixel), back-to-back tasks with one outcome share a bar
		// whatever their functions: the colour is the outcome.
		dense := len(s.bars) >= s.cfg.MaxBars/4
		if dense && b.outcome == o && start.Sub(b.end) <= s.cfg.MergeGap {
			if t.End.After(b.end) {
				b.end = t.End
			}
			if b.function != t.Function {
				b.function = severalFunctions
			}
			b.n++
			return
		}
	}
	s.bars = append(s.bars, bar{worker: t.Worker, start: start, end: t.End, outcome: o, function: t.Function, n: 1})
	s.last[t.Worker] = s.pruned + len(s.bars) - 1
}

func (s *stream) prune(now time.Time) {
	cut := 0
	oldest := now.Add(-s.cfg.Window)
	for cut < len(s.bars) && (s.bars[cut].end.Before(oldest) || len(s.bars)-cut > s.cfg.MaxBars) {
		cut++
	}
	if cut == 0 {
		return
	}
	n := copy(s.bars, s.bars[cut:])
	clear(s.bars[n:])
	s.bars = s.bars[:n]
	s.pruned += cut
	for w, i := range s.last {
		if i < s.pruned {
			delete(s.last, w)
		}
	}
}

// sample is one point of the CPU and memory charts.
type sample struct {
	at                          time.Time
	schedCPU                    uint64 // per-mille of one core
	agentCPU, procCPU           uint64 // summed over workers
	schedRSS, agentRSS, procRSS uint64 // bytes
}

// history keeps the CPU and memory samples of the last Window, one per
// status report at most every Every.
type history struct {
	window, every time.Duration
	samples       []sample
	lastUpdate    time.Time
}

func (h *history) observe(st *feed.State, now time.Time) {
	if st.Status == nil || st.Stale || st.Updated.Equal(h.lastUpdate) {
		return
	}
	if n := len(h.samples); n > 0 && now.Sub(h.samples[n-1].at) < h.every {
		return
	}
	h.lastUpdate = st.Updated
	s := sample{at: now, schedCPU: uint64(st.Status.Scheduler.CPU), schedRSS: st.Status.Scheduler.RSS}
	for i := range st.Status.Workers {
		w := &st.Status.Workers[i]
		s.agentCPU += uint64(w.Agent.CPU)
		s.agentRSS += w.Agent.RSS
		for _, p := range w.Processors {
			s.procCPU += uint64(p.Resource.CPU)
			s.procRSS += p.Resource.RSS
		}
	}
	h.samples = append(h.samples, s)
	cut := 0
	for cut < len(h.samples) && now.Sub(h.samples[cut].at) > h.window {
		cut++
	}
	if cut > 0 {
		n := copy(h.samples, h.samples[cut:])
		h.samples = h.samples[:n]
	}
}
