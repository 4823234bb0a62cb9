package feed

import (
	"encoding/hex"
	"sort"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// model is the Monitor's state, guarded by Monitor.mu. Its methods are
// pure functions of the messages and the clock handed in, so the tests can
// drive it without sockets.
type model struct {
	address  string
	status   *protocol.StateScheduler
	updated  time.Time
	stale    bool
	seen     bool // a message has arrived at least once
	restarts int

	// done is a ring of the most recent finished tasks; next is where the
	// next one goes, n how many are filled.
	done    [MaxTasks]Task
	next, n int

	running runningTable

	// secs is a ring of per-second counts indexed by unix second % Seconds.
	secs [Seconds]Second

	totals map[protocol.TaskState]uint64

	// Reconciliation with the status (see status): the terminal counts of
	// the previous status, the terminal task events counted since it, and
	// the messages received since it.
	prevTerminal  [protocol.NumTaskStates]uint64
	haveTerminal  bool
	eventsSince   [protocol.NumTaskStates]uint64
	recvSince     uint64
	prevSent      uint64 // MonitorSent of the previous status
	prevInstance  string
	missed        uint64
	backUncounted bool // the feed came back; its first status must not count a restart again
}

func (m *model) init(addr string) {
	m.address = addr
	m.stale = true // nothing has arrived yet
	m.totals = make(map[protocol.TaskState]uint64)
	m.running.init(MaxRunning)
}

// checkStale marks the feed stale when nothing arrived within timeout and
// reports whether it just turned stale.
func (m *model) checkStale(now time.Time, timeout time.Duration) bool {
	if m.stale || now.Sub(m.updated) <= timeout {
		return false
	}
	m.stale = true
	return true
}

// handle applies one received message. It reports whether the feed came
// back after being stale, and how many frames could not be decoded.
func (m *model) handle(now time.Time, timeout time.Duration, frames [][]byte) (back bool, bad int) {
	m.recvSince++ // received, whether or not it decodes (see Missed)
	if len(frames) != 1 {
		return false, 1 // the scheduler sends one frame per message, no topic
	}
	msg, err := protocol.Decode(frames[0])
	if err != nil {
		return false, 1
	}
	if m.seen && (m.stale || now.Sub(m.updated) > timeout) {
		m.restarts++
		m.backUncounted = true
		back = true
	}
	m.seen, m.stale, m.updated = true, false, now
	switch v := msg.(type) {
	case *protocol.StateScheduler:
		m.schedulerStatus(now, v)
	case *protocol.StateTask:
		m.task(now, v)
	}
	return back, 0
}

// schedulerStatus takes a new status. Task events can be lost (the
// scheduler drops them for a slow subscriber, and zmq drops what a
// subscriber gets before it has joined), but the status's terminal counts
// are cumulative: whatever finished since the previous status and was not
// seen as an event is added to the totals and to the current second, so
// Totals and Finished are exact while the scheduler runs.
func (m *model) schedulerStatus(now time.Time, st *protocol.StateScheduler) {
	prev := m.status
	m.status = st
	var cur [protocol.NumTaskStates]uint64
	for _, c := range st.TaskStates {
		if c.State.Valid() && c.State.Terminal() {
			cur[c.State] = c.Count
		}
	}
	restarted := prev != nil && string(st.InstanceID) != m.prevInstance
	m.prevInstance = string(st.InstanceID)
	if restarted {
		if !m.backUncounted {
			m.restarts++ // restarted faster than the timeout
		}
		// The old scheduler's tasks are gone with it.
		m.running.init(MaxRunning)
	}
	m.backUncounted = false
	m.reconcileRunning(st)
	if m.haveTerminal {
		for s := range cur {
			base := m.prevTerminal[s]
			if restarted {
				base = 0
			}
			if cur[s] < base {
				continue // a counter went back without a new instance: not trusted
			}
			if extra := cur[s] - base; extra > m.eventsSince[s] {
				extra -= m.eventsSince[s]
				m.totals[protocol.TaskState(s)] += extra
				m.countN(now, protocol.TaskState(s), extra)
			}
		}
		// Messages published since the previous status minus those
		// received (this one included) were lost on the way to us.
		if !restarted && st.MonitorSent >= m.prevSent {
			if d := st.MonitorSent - m.prevSent; d > m.recvSince {
				m.missed += d - m.recvSince
			}
		}
	}
	m.prevTerminal, m.haveTerminal = cur, true
	m.eventsSince = [protocol.NumTaskStates]uint64{}
	m.recvSince = 0
	m.prevSent = st.MonitorSent
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func (m *model) task(now time.Time, st *protocol.StateTask) {
	id := hex.EncodeToString(clip(st.TaskID, maxIDLen))
	fn := string(clip(st.FunctionName, maxNameLen))
	worker := string(clip(st.Worker, maxWorkerLen))
	switch {
	case st.State == protocol.TaskStateRunning:
		t := Task{ID: id, Function: fn, Worker: worker, State: st.State, Start: now}
		if old, ok := m.running.get(id); ok && old.Worker == worker {
			// Running again on the same worker (a cancel that failed, a
			// balance move refused): it has been running since then.
			if !old.Start.IsZero() {
				t.Start = old.Start
			}
			if t.Function == "" {
				t.Function = old.Function
			}
			m.running.update(t)
			return
		}
		m.running.put(t)
	case st.State.Terminal():
		t, ok := m.running.take(id)
		if !ok {
			t = Task{ID: id}
		}
		if fn != "" {
			t.Function = fn
		}
		if worker != "" {
			t.Worker = worker
		}
		t.State, t.End = st.State, now
		t.Duration, t.PeakMem = 0, st.Profile.MemoryPeak
		if d := st.Profile.DurationS; d > 0 && d < 1e9 {
			t.Duration = time.Duration(d * float64(time.Second))
		} else if !t.Start.IsZero() {
			t.Duration = now.Sub(t.Start)
		}
		m.done[m.next] = t
		m.next = (m.next + 1) % MaxTasks
		if m.n < MaxTasks {
			m.n++
		}
		m.totals[st.State]++
		m.eventsSince[st.State]++
		m.countN(now, st.State, 1)
	case st.State == protocol.TaskStateInactive:
		m.running.take(id) // back in the scheduler's queue
	case st.State.Valid():
		// Canceling, BalanceCanceling: still on its worker until the
		// answer; a Running or terminal event follows.
		if old, ok := m.running.get(id); ok {
			old.State = st.State
			m.running.update(old)
		} else if worker != "" {
			m.running.put(Task{ID: id, Function: fn, Worker: worker, State: st.State})
		}
	}
}

// reconcileRunning drops the tasks the status says are no longer on their
// worker: the worker is gone, or the table holds more tasks for it than
// the scheduler has assigned to it (finish events were lost: the oldest
// entries go). The table reflects exactly the events published before
// the status, so after this it never shows more than the scheduler does.
func (m *model) reconcileRunning(st *protocol.StateScheduler) {
	if m.running.len() == 0 || len(st.Workers) > maxReconcileWorkers {
		return
	}
	assigned := make(map[string]int, len(st.Workers))
	for _, w := range st.Workers {
		assigned[string(clip(w.WorkerID, maxWorkerLen))] = int(w.Sent)
	}
	m.running.trim(func(worker string) int { return assigned[worker] })
}

// Outcome groups a terminal state for the per-second counts.
type Outcome int

// Outcomes.
const (
	OutcomeSuccess Outcome = iota
	OutcomeFailed
	OutcomeCanceled
)

// OutcomeOf says whether terminal state s is a success, a failure or a
// cancel.
func OutcomeOf(s protocol.TaskState) Outcome {
	switch s {
	case protocol.TaskStateSuccess:
		return OutcomeSuccess
	case protocol.TaskStateCanceled, protocol.TaskStateCanceledNotFound, protocol.TaskStateBalanceCanceled:
		return OutcomeCanceled
	}
	return OutcomeFailed
}

func (m *model) countN(now time.Time, s protocol.TaskState, n uint64) {
	sec := now.Unix()
	slot := &m.secs[uint64(sec)%Seconds]
	if slot.At.Unix() != sec || slot.At.IsZero() {
		*slot = Second{At: time.Unix(sec, 0)}
	}
	switch OutcomeOf(s) {
	case OutcomeSuccess:
		slot.Success += n
	case OutcomeCanceled:
		slot.Canceled += n
	default:
		slot.Failed += n
	}
}

func (m *model) snapshot(now time.Time, timeout time.Duration) State {
	s := State{
		Address:  m.address,
		Updated:  m.updated,
		Stale:    m.stale || now.Sub(m.updated) > timeout,
		Restarts: m.restarts,
		Totals:   Totals{Finished: make(map[protocol.TaskState]uint64, len(m.totals))},
	}
	s.Missed = m.missed
	if m.status != nil {
		s.Dropped = m.status.MonitorDropped
		// Decode gave a message that nobody else holds and the model never
		// changes it: a shallow copy of the pointer would be shared with
		// consumers, so hand out a copy of the struct and its slices.
		s.Status = cloneStatus(m.status)
	}
	for k, v := range m.totals {
		s.Totals.Finished[k] = v
	}
	s.Tasks = make([]Task, 0, m.n)
	for i := 1; i <= m.n; i++ {
		s.Tasks = append(s.Tasks, m.done[(m.next-i+MaxTasks)%MaxTasks])
	}
	s.Running = m.running.list()
	// Every second of the window, oldest first, zero where nothing finished.
	end := now.Unix()
	s.Finished = make([]Second, 0, Seconds)
	for sec := end - Seconds + 1; sec <= end; sec++ {
		slot := m.secs[uint64(sec)%Seconds]
		if slot.At.IsZero() || slot.At.Unix() != sec {
			slot = Second{At: time.Unix(sec, 0)}
		}
		s.Finished = append(s.Finished, slot)
	}
	return s
}

// runningTable is a map of tasks on workers bounded to max entries: when
// full, the entry put longest ago goes (its finish event was probably
// dropped by the scheduler for a slow subscriber).
type runningTable struct {
	max   int
	m     map[string]runEntry
	order []orderEntry // put order; stale entries are skipped
	head  int
	seq   uint64
}

type runEntry struct {
	t   Task
	seq uint64
}

type orderEntry struct {
	id  string
	seq uint64
}

func (r *runningTable) init(max int) {
	r.max = max
	r.m = make(map[string]runEntry)
	r.order, r.head = nil, 0
}

func (r *runningTable) get(id string) (Task, bool) {
	e, ok := r.m[id]
	return e.t, ok
}

func (r *runningTable) put(t Task) {
	r.seq++
	r.m[t.ID] = runEntry{t: t, seq: r.seq}
	r.order = append(r.order, orderEntry{t.ID, r.seq})
	for len(r.m) > r.max {
		o := r.order[r.head]
		r.head++
		if e, ok := r.m[o.id]; ok && e.seq == o.seq {
			delete(r.m, o.id)
		}
	}
	// Compact the order log so it stays within a small multiple of the
	// table: entries of taken or replaced tasks are dropped.
	if len(r.order)-r.head > 2*r.max+16 || r.head > r.max {
		live := r.order[:0]
		for _, o := range r.order[r.head:] {
			if e, ok := r.m[o.id]; ok && e.seq == o.seq {
				live = append(live, o)
			}
		}
		r.order, r.head = live, 0
	}
}

// update replaces the task of an entry in place (its age is kept).
func (r *runningTable) update(t Task) {
	if e, ok := r.m[t.ID]; ok {
		e.t = t
		r.m[t.ID] = e
	}
}

func (r *runningTable) take(id string) (Task, bool) {
	e, ok := r.m[id]
	if ok {
		delete(r.m, id)
	}
	return e.t, ok
}

func (r *runningTable) len() int { return len(r.m) }

// trim keeps at most keep(worker) tasks per worker, the newest.
func (r *runningTable) trim(keep func(worker string) int) {
	byWorker := map[string][]runEntry{}
	for _, e := range r.m {
		byWorker[e.t.Worker] = append(byWorker[e.t.Worker], e)
	}
	for w, es := range byWorker {
		n := keep(w)
		if len(es) <= n {
			continue
		}
		sort.Slice(es, func(i, j int) bool { return es[i].seq < es[j].seq })
		for _, e := range es[:len(es)-n] {
			delete(r.m, e.t.ID)
		}
	}
}

// list returns the tasks, oldest Start first.
func (r *runningTable) list() []Task {
	out := make([]Task, 0, len(r.m))
	for _, e := range r.m {
		out = append(out, e.t)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func cloneStatus(s *protocol.StateScheduler) *protocol.StateScheduler {
	c := *s
	c.Binder.Received = append([]protocol.MessageCount(nil), s.Binder.Received...)
	c.Binder.Sent = append([]protocol.MessageCount(nil), s.Binder.Sent...)
	c.Clients = append([]protocol.ClientTaskCount(nil), s.Clients...)
	c.TaskStates = append([]protocol.TaskStateCount(nil), s.TaskStates...)
	c.Workers = make([]protocol.WorkerStatus, len(s.Workers))
	for i, w := range s.Workers {
		w.Processors = append([]protocol.ProcessorStatus(nil), w.Processors...)
		c.Workers[i] = w
	}
	c.WorkerGroups = append([]protocol.WorkerGroup(nil), s.WorkerGroups...)
	if s.Workers == nil {
		c.Workers = nil
	}
	return &c
}
