package scheduler

import (
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// Snapshot fills the parts of StateScheduler the scheduler knows: clients,
// objects, task state counts, workers and the worker groups started through
// the adapter webhook. The caller adds the process
// resources and message counts.
func (s *Scheduler) Snapshot(now time.Time) *protocol.StateScheduler {
	st := &protocol.StateScheduler{ObjectCount: uint64(len(s.objects)), WorkerGroups: s.WorkerGroups()}
	for id, set := range s.clientTasks {
		n := len(set)
		if n > 1<<32-1 {
			n = 1<<32 - 1
		}
		st.Clients = append(st.Clients, protocol.ClientTaskCount{Client: []byte(id), Tasks: uint32(n)})
	}
	st.TaskStates = make([]protocol.TaskStateCount, protocol.NumTaskStates)
	for i := range st.TaskStates {
		st.TaskStates[i] = protocol.TaskStateCount{State: protocol.TaskState(i), Count: s.counts[i]}
	}
	for _, w := range s.workers.order {
		ws := protocol.WorkerStatus{
			WorkerID:   w.idb,
			Agent:      w.last.Agent,
			RSSFree:    w.last.RSSFree,
			Free:       uint32(max(w.free(), 0)),
			Sent:       uint32(w.tasks.Len()),
			Queued:     w.last.QueuedTasks,
			LagUS:      uint64(w.last.LatencyUS),
			LastS:      uint8(min(max(int(now.Sub(w.lastSeen)/time.Second), 0), 255)),
			Processors: w.last.Processors,
		}
		suspended := 0
		itl := ""
		for _, p := range w.last.Processors {
			if p.Suspended {
				suspended++
			} else if itl == "" {
				itl = bit(p.Initialized) + bit(p.HasTask) + bit(w.last.TaskLock)
			}
		}
		if itl == "" {
			itl = "00" + bit(w.last.TaskLock)
		}
		ws.Suspended = uint8(min(suspended, 255))
		ws.ITL = itl
		st.Workers = append(st.Workers, ws)
	}
	return st
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Counts returns the task state counters (current for non-terminal states,
// cumulative for terminal ones).
func (s *Scheduler) Counts() [protocol.NumTaskStates]uint64 { return s.counts }

// NumTasks is the number of tasks held (waiting, on workers, canceling).
func (s *Scheduler) NumTasks() int { return len(s.tasks) }

// NumWaiting is the number of tasks waiting for a worker.
func (s *Scheduler) NumWaiting() int { return s.numWaiting }
