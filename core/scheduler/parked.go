package scheduler

import (
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// A Task naming objects its client has not announced is not routed (a
// worker would wait for them forever), but it is not refused at once
// either: a client may announce an object only once object storage
// acknowledged it (the Python client does so for send_object called from
// its own thread), so the create can arrive just after the task. Such a
// task is parked for Config.AnnounceGrace: the client's next creates place
// it; at the end of the grace it is refused naming the missing object. A
// client has at most MaxParkedPerClient parked tasks; beyond that a task
// naming unknown objects is refused at once.

// parkedTask is a task waiting for its client's ObjectInstruction{create}.
type parkedTask struct {
	m     *protocol.Task
	until time.Time
}

// park keeps m of owner until its objects are announced; false when the
// client's parked tasks are at their bound.
func (s *Scheduler) park(owner string, m *protocol.Task, now time.Time) bool {
	if len(s.parked[owner]) >= s.cfg.MaxParkedPerClient {
		return false
	}
	s.parked[owner] = append(s.parked[owner], &parkedTask{m: m, until: now.Add(s.cfg.AnnounceGrace)})
	s.parkedIDs[string(m.TaskID)] = owner
	return true
}

// unparkReady places owner's parked tasks whose objects are all announced
// now, in arrival order.
func (s *Scheduler) unparkReady(owner string) {
	list := s.parked[owner]
	if len(list) == 0 {
		return
	}
	kept, ready := splitParked(list, func(p *parkedTask) bool {
		_, why := s.checkTaskObjects(owner, p.m, nil)
		return why != ""
	})
	s.setParked(owner, kept)
	for _, p := range ready {
		delete(s.parkedIDs, string(p.m.TaskID))
		s.accept(owner, p.m)
	}
}

// expireParked refuses the parked tasks whose grace is over.
func (s *Scheduler) expireParked(now time.Time) {
	for owner, list := range s.parked {
		kept, due := splitParked(list, func(p *parkedTask) bool { return now.Before(p.until) })
		s.setParked(owner, kept)
		for _, p := range due {
			delete(s.parkedIDs, string(p.m.TaskID))
			r, why := s.checkTaskObjects(owner, p.m, nil)
			if why == "" { // announced meanwhile without a retry: place it after all
				s.accept(owner, p.m)
				continue
			}
			s.refuseTask([]byte(owner), p.m.TaskID, r, why+" within "+s.cfg.AnnounceGrace.String())
		}
	}
}

// splitParked splits list, in order, into the tasks that stay parked and
// those that leave; kept reuses list's array.
func splitParked(list []*parkedTask, stay func(*parkedTask) bool) (kept, leaving []*parkedTask) {
	kept = list[:0]
	for _, p := range list {
		if stay(p) {
			kept = append(kept, p)
		} else {
			leaving = append(leaving, p)
		}
	}
	return kept, leaving
}

// unpark removes the parked task id; false when it is not parked.
func (s *Scheduler) unpark(id string) bool {
	owner, ok := s.parkedIDs[id]
	if !ok {
		return false
	}
	delete(s.parkedIDs, id)
	list := s.parked[owner]
	for i, p := range list {
		if string(p.m.TaskID) == id {
			s.setParked(owner, append(list[:i], list[i+1:]...))
			break
		}
	}
	return true
}

// dropParked cancels every parked task of owner (it left), like its
// queued tasks.
func (s *Scheduler) dropParked(owner string) {
	list := s.parked[owner]
	delete(s.parked, owner)
	for _, p := range list {
		delete(s.parkedIDs, string(p.m.TaskID))
		s.out.Send([]byte(owner), &protocol.TaskCancelConfirm{TaskID: p.m.TaskID, Type: protocol.CancelConfirmCanceled})
	}
}

func (s *Scheduler) setParked(owner string, list []*parkedTask) {
	if len(list) == 0 {
		delete(s.parked, owner)
		return
	}
	s.parked[owner] = list
}
