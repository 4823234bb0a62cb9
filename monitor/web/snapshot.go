package web

import (
	"sort"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/monitor/feed"
)

// Snapshot is the content of one frame sent to the page: everything it
// draws, already aggregated, so that the browser's work does not grow
// with the task rate. Times are Unix milliseconds of the server's clock
// (fields named *_ms) or milliseconds relative to Now (negative: in the
// past), so the page needs no clock of its own.
type Snapshot struct {
	Address    string         `json:"address"`
	Now        int64          `json:"now_ms"`
	Feed       FeedStatus     `json:"feed"`
	Scheduler  *SchedulerCard `json:"scheduler"` // nil until the first status report
	Tasks      []StateCount   `json:"tasks"`     // by state, in the protocol's order
	Workers    []Worker       `json:"workers"`   // sorted by label
	Clients    []Client       `json:"clients"`   // sorted by label
	Log        []LogEntry     `json:"log"`       // newest first
	Stream     Stream         `json:"stream"`
	Throughput Throughput     `json:"throughput"`
	History    History        `json:"history"`
}

// FeedStatus says whether status reports arrive.
type FeedStatus struct {
	State    string `json:"state"`      // "waiting" (nothing yet), "live" or "stopped"
	Updated  int64  `json:"updated_ms"` // arrival of the newest message; 0 = never
	Restarts int    `json:"restarts"`   // times the feed came back after stopping
	Dropped  uint64 `json:"dropped"`    // status messages the scheduler dropped for slow subscribers
	Missed   uint64 `json:"missed"`     // messages published but not received by this UI
}

// SchedulerCard is the scheduler process and its bookkeeping.
type SchedulerCard struct {
	CPU     uint16 `json:"cpu"` // per-mille of one core
	RSS     uint64 `json:"rss"`
	RSSFree uint64 `json:"rss_free"` // host memory available
	Objects uint64 `json:"objects"`
}

// StateCount is the number of tasks in one state: current for states a
// task passes through, cumulative for terminal ones.
type StateCount struct {
	State   string `json:"state"`
	Outcome string `json:"outcome"`
	Count   uint64 `json:"count"`
}

// Worker is one row of the worker table.
type Worker struct {
	ID         string      `json:"id"`
	Label      string      `json:"label"`
	Group      string      `json:"group"`
	AgentCPU   uint16      `json:"agent_cpu"`
	AgentRSS   uint64      `json:"agent_rss"`
	CPU        uint64      `json:"cpu"` // processors, summed
	RSS        uint64      `json:"rss"` // processors, summed
	RSSFree    uint64      `json:"rss_free"`
	Free       uint32      `json:"free"`
	Sent       uint32      `json:"sent"`
	Queued     uint32      `json:"queued"`
	Suspended  uint8       `json:"suspended"`
	LagUS      uint64      `json:"lag_us"`
	LastS      uint8       `json:"last_s"`
	ITL        string      `json:"itl"`
	Done       uint64      `json:"done"` // finished tasks this UI saw on it
	Processors []Processor `json:"processors"`
}

// Processor is one processor of a worker.
type Processor struct {
	PID         uint32 `json:"pid"`
	CPU         uint16 `json:"cpu"`
	RSS         uint64 `json:"rss"`
	Initialized bool   `json:"initialized"`
	HasTask     bool   `json:"has_task"`
	Suspended   bool   `json:"suspended"`
}

// Client is a client with unfinished tasks.
type Client struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Tasks uint32 `json:"tasks"`
}

// LogEntry is one finished task of the task log.
type LogEntry struct {
	ID         string  `json:"id"`
	Function   string  `json:"function"`
	Worker     string  `json:"worker"` // label
	State      string  `json:"state"`
	Outcome    string  `json:"outcome"`
	End        int64   `json:"end_ms"`
	DurationMS float64 `json:"duration_ms"`
	PeakMem    uint64  `json:"peak_mem"` // bytes; 0 = unknown
}

// Stream is the task stream: one row per worker, bars over the last
// WindowS seconds. Each bar is [row, start, end, outcome, function, n]:
// row indexes Rows, start and end are ms relative to Now, outcome indexes
// Outcomes, function indexes Functions and n counts the tasks merged into
// the bar. Arrays, not objects, because a busy stream has a thousand bars.
type Stream struct {
	WindowS   int        `json:"window_s"`
	Rows      []string   `json:"rows"` // worker labels
	Outcomes  []string   `json:"outcomes"`
	Functions []string   `json:"functions"`
	Bars      [][6]int64 `json:"bars"`
}

// Throughput is tasks finished per second, oldest first, ending with the
// current second (which is still filling).
type Throughput struct {
	Seconds  int      `json:"seconds"`
	Success  []uint64 `json:"success"`
	Failed   []uint64 `json:"failed"`
	Canceled []uint64 `json:"canceled"`
}

// History is the CPU and memory charts: one point per status report.
type History struct {
	At       []int64  `json:"at"` // ms relative to Now
	SchedCPU []uint64 `json:"sched_cpu"`
	AgentCPU []uint64 `json:"agent_cpu"`
	ProcCPU  []uint64 `json:"proc_cpu"`
	SchedRSS []uint64 `json:"sched_rss"`
	AgentRSS []uint64 `json:"agent_rss"`
	ProcRSS  []uint64 `json:"proc_rss"`
}

// Limits of what one snapshot carries.
const (
	logRows        = 100
	maxRunningBars = 500
	throughputSecs = 120
)

// buildSnapshot turns the feed's state and the server's aggregates into
// the page's content. It reads st, s and h and changes nothing.
func buildSnapshot(st *feed.State, s *stream, h *history, now time.Time) Snapshot {
	snap := Snapshot{
		Address: st.Address,
		Now:     now.UnixMilli(),
		Feed:    FeedStatus{State: "live", Restarts: st.Restarts, Dropped: st.Dropped, Missed: st.Missed},
		Workers: []Worker{},
		Clients: []Client{},
	}
	switch {
	case st.Updated.IsZero():
		snap.Feed.State = "waiting"
	case st.Stale:
		snap.Feed.State = "stopped"
	}
	if !st.Updated.IsZero() {
		snap.Feed.Updated = st.Updated.UnixMilli()
	}

	// Labels must tell apart every worker the page names: current ones and
	// those still in the log or the stream.
	ids := map[string]struct{}{}
	if st.Status != nil {
		for i := range st.Status.Workers {
			ids[string(st.Status.Workers[i].WorkerID)] = struct{}{}
		}
	}
	for i := range st.Tasks {
		ids[st.Tasks[i].Worker] = struct{}{}
	}
	for i := range st.Running {
		ids[st.Running[i].Worker] = struct{}{}
	}
	for i := range s.bars {
		ids[s.bars[i].worker] = struct{}{}
	}
	delete(ids, "")
	labels := shortLabels(keys(ids))

	if st.Status != nil {
		snap.Scheduler = &SchedulerCard{
			CPU: st.Status.Scheduler.CPU, RSS: st.Status.Scheduler.RSS,
			RSSFree: st.Status.RSSFree, Objects: st.Status.ObjectCount,
		}
		snap.Workers = workers(st.Status, labels, s.done)
		snap.Clients = clients(st.Status)
	}
	snap.Tasks = taskCounts(st.Status)
	snap.Log = taskLog(st.Tasks, labels)
	snap.Stream = buildStream(st, s, labels, now)
	snap.Throughput = throughput(st.Finished, now)
	snap.History = buildHistory(h, now)
	return snap
}

func keys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func taskCounts(status *protocol.StateScheduler) []StateCount {
	counts := make([]uint64, protocol.NumTaskStates)
	if status != nil {
		for _, c := range status.TaskStates {
			if int(c.State) < len(counts) {
				counts[c.State] = c.Count
			}
		}
	}
	out := make([]StateCount, 0, len(counts))
	for i, n := range counts {
		s := protocol.TaskState(i)
		if s == protocol.TaskStateBalanceCanceled { // reserved, never used
			continue
		}
		out = append(out, StateCount{State: s.String(), Outcome: outcomeOf(s).String(), Count: n})
	}
	return out
}

func workers(status *protocol.StateScheduler, labels map[string]string, done map[string]uint64) []Worker {
	group := map[string]string{}
	for _, g := range status.WorkerGroups {
		for _, w := range g.WorkerIDs {
			group[string(w)] = string(g.GroupID)
		}
	}
	out := make([]Worker, 0, len(status.Workers))
	for i := range status.Workers {
		w := &status.Workers[i]
		id := string(w.WorkerID)
		row := Worker{
			ID: id, Label: labels[id], Group: group[id],
			AgentCPU: w.Agent.CPU, AgentRSS: w.Agent.RSS, RSSFree: w.RSSFree,
			Free: w.Free, Sent: w.Sent, Queued: w.Queued, Suspended: w.Suspended,
			LagUS: w.LagUS, LastS: w.LastS, ITL: w.ITL, Done: done[id],
			Processors: make([]Processor, 0, len(w.Processors)),
		}
		for _, p := range w.Processors {
			row.CPU += uint64(p.Resource.CPU)
			row.RSS += p.Resource.RSS
			row.Processors = append(row.Processors, Processor{
				PID: p.PID, CPU: p.Resource.CPU, RSS: p.Resource.RSS,
				Initialized: p.Initialized, HasTask: p.HasTask, Suspended: p.Suspended,
			})
		}
		sort.Slice(row.Processors, func(a, b int) bool { return row.Processors[a].PID < row.Processors[b].PID })
		out = append(out, row)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Label < out[b].Label })
	return out
}

func clients(status *protocol.StateScheduler) []Client {
	ids := make([]string, 0, len(status.Clients))
	for _, c := range status.Clients {
		ids = append(ids, string(c.Client))
	}
	labels := shortLabels(ids)
	out := make([]Client, 0, len(status.Clients))
	for _, c := range status.Clients {
		id := string(c.Client)
		out = append(out, Client{ID: id, Label: labels[id], Tasks: c.Tasks})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Label < out[b].Label })
	return out
}

func taskLog(tasks []feed.Task, labels map[string]string) []LogEntry {
	n := min(len(tasks), logRows)
	out := make([]LogEntry, 0, n)
	for i := range n {
		t := &tasks[i]
		e := LogEntry{
			ID: t.ID, Function: t.Function, Worker: labels[t.Worker],
			State: t.State.String(), Outcome: outcomeOf(t.State).String(),
			DurationMS: float64(t.Duration.Microseconds()) / 1000, PeakMem: t.PeakMem,
		}
		if !t.End.IsZero() {
			e.End = t.End.UnixMilli()
		}
		out = append(out, e)
	}
	return out
}

func buildStream(st *feed.State, s *stream, labels map[string]string, now time.Time) Stream {
	out := Stream{WindowS: int(s.cfg.Window / time.Second), Outcomes: outcomeNames[:], Bars: [][6]int64{}}
	// Rows: the current workers, then workers that left but still have bars.
	rowOf := map[string]int64{}
	var rows []string
	addRow := func(id string) int64 {
		if r, ok := rowOf[id]; ok {
			return r
		}
		rowOf[id] = int64(len(rows))
		rows = append(rows, id)
		return rowOf[id]
	}
	var current []string
	if st.Status != nil {
		for i := range st.Status.Workers {
			current = append(current, string(st.Status.Workers[i].WorkerID))
		}
	}
	sort.Slice(current, func(a, b int) bool { return labels[current[a]] < labels[current[b]] })
	for _, id := range current {
		addRow(id)
	}
	fnOf := map[string]int64{}
	fn := func(name string) int64 {
		if i, ok := fnOf[name]; ok {
			return i
		}
		fnOf[name] = int64(len(out.Functions))
		out.Functions = append(out.Functions, name)
		return fnOf[name]
	}
	rel := func(t time.Time) int64 { return t.Sub(now).Milliseconds() }
	for i := range s.bars {
		b := &s.bars[i]
		out.Bars = append(out.Bars, [6]int64{addRow(b.worker), rel(b.start), rel(b.end), int64(b.outcome), fn(b.function), int64(b.n)})
	}
	// A running task's bar grows until now, or, while the feed is down,
	// until the last update: past that nobody knows it is still running.
	runEnd := int64(0)
	if st.Stale && !st.Updated.IsZero() {
		runEnd = rel(st.Updated)
	}
	for i := range st.Running {
		if i == maxRunningBars {
			break
		}
		t := &st.Running[i]
		if t.Worker == "" || t.Start.IsZero() || rel(t.Start) > runEnd {
			continue
		}
		out.Bars = append(out.Bars, [6]int64{addRow(t.Worker), rel(t.Start), runEnd, int64(outcomeRunning), fn(t.Function), 1})
	}
	out.Rows = make([]string, len(rows))
	for i, id := range rows {
		out.Rows[i] = labels[id]
	}
	if out.Functions == nil {
		out.Functions = []string{}
	}
	return out
}

// throughput puts the feed's per-second counts into fixed slots ending
// with the current second, so gaps (no task finished, or the feed down)
// are zeros and the chart's x axis does not jump.
func throughput(secs []feed.Second, now time.Time) Throughput {
	out := Throughput{
		Seconds: throughputSecs,
		Success: make([]uint64, throughputSecs), Failed: make([]uint64, throughputSecs), Canceled: make([]uint64, throughputSecs),
	}
	cur := now.Unix()
	for _, s := range secs {
		i := throughputSecs - 1 - int(cur-s.At.Unix())
		if i < 0 || i >= throughputSecs {
			continue
		}
		out.Success[i] += s.Success
		out.Failed[i] += s.Failed
		out.Canceled[i] += s.Canceled
	}
	return out
}

func buildHistory(h *history, now time.Time) History {
	out := History{
		At: []int64{}, SchedCPU: []uint64{}, AgentCPU: []uint64{}, ProcCPU: []uint64{},
		SchedRSS: []uint64{}, AgentRSS: []uint64{}, ProcRSS: []uint64{},
	}
	for _, s := range h.samples {
		out.At = append(out.At, s.at.Sub(now).Milliseconds())
		out.SchedCPU = append(out.SchedCPU, s.schedCPU)
		out.AgentCPU = append(out.AgentCPU, s.agentCPU)
		out.ProcCPU = append(out.ProcCPU, s.procCPU)
		out.SchedRSS = append(out.SchedRSS, s.schedRSS)
		out.AgentRSS = append(out.AgentRSS, s.agentRSS)
		out.ProcRSS = append(out.ProcRSS, s.procRSS)
	}
	return out
}
