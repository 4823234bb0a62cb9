package worker

import (
	"fmt"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// The task queue and dispatch: which task runs on which processor, ahead
// of time or now, suspended, resumed, finished or timed out. Called on the
// loop goroutine.

// ensureCurrent makes sure a processor exists to run the next task.
func (a *agent) ensureCurrent() bool {
	// A processor whose channel has closed is on its way out (its exit,
	// onExit, deals with what it held): no new task goes to it.
	if a.current != nil && a.current.fd < 0 {
		a.current = nil
	}
	if a.spare != nil && a.spare.fd < 0 {
		a.spare = nil
	}
	if a.current != nil {
		return true
	}
	if a.spare != nil {
		a.current, a.spare = a.spare, nil
		return true
	}
	p, err := a.spawn()
	if err != nil {
		a.stop(StopFatal, "cannot start processors", err)
		return false
	}
	a.current = p
	return true
}

// running reports whether a task is executing now.
func (a *agent) running() bool {
	return a.current != nil && a.current.task != nil && !a.current.suspended
}

// dispatch starts or resumes the best queued task if nothing is running,
// and tops up the tasks sent ahead; the task frames go out in one write.
func (a *agent) dispatch() {
	if a.stopReason != "" || a.schedDown {
		return
	}
	if !a.ensureCurrent() {
		return
	}
	for !a.running() {
		t := a.queue.peek()
		if t == nil {
			a.armTimeout()
			return
		}
		if t.resume {
			a.queue.pop()
			t.resume = false
			a.resume(t)
			continue
		}
		p := a.current
		if !p.initialized || !a.storageKnown {
			return
		}
		a.queue.pop()
		a.start(p, t)
	}
	a.armTimeout()
	a.fillAhead()
	if a.current != nil {
		a.flushProcessor(a.current)
	}
}

// aheadBelow: a processor is sent its next task ahead of time only while
// its tasks take less than this. Then the agent's turn-around between tasks
// (tens of µs) is worth saving, and a cancel of the task sent ahead, which
// the processor can only answer between tasks, waits little; for longer
// tasks the saving is negligible and a cancel must not wait.
const aheadBelow = 2 * time.Millisecond

// Sending ahead: how much work a processor holds beyond its running task.
// The tasks sent ahead of it wait about aheadBelow of work at most (the
// durations of its last task), so a cancel of one of them, which the
// processor answers between tasks, and a suspension of the running task,
// behind which they wait, hold them up little; and at most maxAhead. The
// agent tops them up when half are gone, so a processor of trivial tasks is
// written to once per maxAhead/2 tasks and reads them in one system call.
const maxAhead = 16

// aheadLimit is how many tasks p may be sent ahead of its running one.
func aheadLimit(p *processor) int {
	if p.lastRun <= 0 {
		return 1
	}
	return int(min(max(aheadBelow/p.lastRun, 1), maxAhead))
}

// fillAhead sends the running processor its next tasks now, so that it goes
// on without waiting for the agent when the current one ends (docs/protocol.md
// §7.5, "Sending ahead"). Only tasks of the same priority go ahead: one of
// higher priority would suspend the running task instead, and one of lower
// priority must not overtake anything that arrives meanwhile. The frames are
// queued; dispatch sends them.
func (a *agent) fillAhead() {
	p := a.current
	if p == nil || p.task == nil || p.suspended || p.killed || p.fd < 0 || !p.quick {
		return
	}
	limit := aheadLimit(p)
	if len(p.ahead) > limit/2 {
		return // more than half still there: top up later, several at once
	}
	for len(p.ahead) < limit {
		t := a.queue.peek()
		if t == nil || t.resume || t.priority != p.task.priority {
			return
		}
		a.queue.pop()
		t.proc, t.ahead = p, true
		p.ahead = append(p.ahead, t)
		a.sendTask(p, t)
	}
}

// promoteAt starts the first task sent ahead to p, if any, now that the
// task before it has ended; cpu is p's CPU time at that moment. It returns
// the promoted task.
func (a *agent) promoteAt(p *processor, cpu uint64) *task {
	if len(p.ahead) == 0 {
		return nil
	}
	t := p.ahead[0]
	n := copy(p.ahead, p.ahead[1:])
	p.ahead[n] = nil
	p.ahead = p.ahead[:n]
	t.ahead, p.task = false, t
	a.begin(p, t, cpu)
	return t
}

// requeueAhead takes back the tasks sent ahead to p, which p will not run
// (it is being killed, or died with another task): each goes back to the
// queue in its old place, or, if its cancel was pending, is cancelled.
func (a *agent) requeueAhead(p *processor) {
	for i, t := range p.ahead {
		p.ahead[i] = nil
		t.ahead, t.proc = false, nil
		if t.withdrawing {
			t.withdrawing = false
			delete(a.tasks, t.key)
			a.send(&protocol.TaskCancelConfirm{TaskID: t.msg.TaskID, Type: protocol.CancelConfirmCanceled})
			continue
		}
		a.queue.requeue(t)
	}
	p.ahead = p.ahead[:0]
}

// dropAhead removes t from the tasks sent ahead to p, if it is one.
func (p *processor) dropAhead(t *task) {
	for i, x := range p.ahead {
		if x == t {
			n := i + copy(p.ahead[i:], p.ahead[i+1:])
			p.ahead[n] = nil
			p.ahead = p.ahead[:n]
			return
		}
	}
}

// start hands task t to the idle processor p (the frame is queued; dispatch
// sends it).
func (a *agent) start(p *processor, t *task) {
	t.proc = p
	p.task = t
	a.begin(p, t, p.stat.CPU())
	a.sendTask(p, t)
}

// begin marks t as started on p now: its profile and timeout count from
// here, with cpu as p's CPU time at this moment.
func (a *agent) begin(p *processor, t *task, cpu uint64) {
	now := time.Now()
	t.started, t.runSince = now, now
	t.cpu0 = cpu
	if p.rss == 0 {
		p.rss, p.rssAt = p.stat.RSS(), now
	}
	t.rss0 = p.rss // what it was when the processor last finished a task
	t.rssPeak = t.rss0
}

// sendTask queues t for p (queueProcessor). Arguments go through as they
// came (object ids and inline bytes); ArgumentIDs stays empty, as
// docs/protocol.md §7.5 allows.
func (a *agent) sendTask(p *processor, t *task) {
	t.sentUpTo = a.queueProcessor(p, protocol.MustEncode(&protocol.ProcessorTask{
		TaskID:        t.msg.TaskID,
		Source:        t.msg.Source,
		SerializerID:  serializerID(t.msg.Source),
		FuncObjectID:  t.msg.FuncObjectID,
		Metadata:      t.msg.Metadata,
		Priority:      t.msg.Priority,
		StreamOutput:  t.msg.StreamOutput,
		ObjectStorage: a.storage,
		Arguments:     t.msg.Arguments,
		KeepResult:    t.msg.KeepResult,
	}))
}

// suspend pauses the current processor's task and queues its resumption;
// a fresh (or spare) processor becomes current.
func (a *agent) suspend(p *processor) {
	t := p.task
	a.suspendProc(p)
	t.ran += time.Since(t.runSince)
	t.runSince = time.Time{}
	t.resume = true
	a.queue.push(t)
	a.current = nil
	a.ensureCurrent()
}

// resume continues suspended task t in its own processor, which becomes
// current again; the idle current processor is kept as the spare.
func (a *agent) resume(t *task) {
	p := t.proc
	if cur := a.current; cur != nil && cur != p {
		if a.spare == nil && cur.task == nil {
			a.spare = cur
		} else {
			a.kill(cur)
		}
	}
	a.current = p
	a.resumeProc(p)
	t.runSince = time.Now()
}

// finishTask forgets t: it is no longer queued or bound to its processor.
func (a *agent) finishTask(t *task) {
	a.queue.remove(t)
	t.resume = false
	delete(a.tasks, t.key)
	if p := t.proc; p != nil {
		if p.task == t {
			p.task = nil
		}
		p.dropAhead(t)
	}
	t.ahead, t.withdrawing = false, false
}

// retire kills p (whose task is gone) and, if it was current, lets another
// processor take its place.
func (a *agent) retire(p *processor) {
	a.kill(p)
	if a.current == p {
		a.current = nil
	}
	if a.spare == p {
		a.spare = nil
	}
}

// ---- timeouts ----

// armTimeout sets the deadline of the running task.
func (a *agent) armTimeout() {
	a.deadline = time.Time{}
	if a.cfg.TaskTimeout <= 0 || !a.running() {
		return
	}
	t := a.current.task
	a.deadline = t.runSince.Add(a.cfg.TaskTimeout - t.ran)
}

func (a *agent) checkTimeout(now time.Time) {
	if a.cfg.TaskTimeout <= 0 || !a.running() {
		return
	}
	// A result already waiting on the channel settles the task (and starts
	// the one sent ahead) before anything is killed.
	a.readProcessor(a.current)
	if !a.running() {
		return
	}
	p := a.current
	t := p.task
	if t.ran+now.Sub(t.runSince) < a.cfg.TaskTimeout {
		a.armTimeout()
		return
	}
	a.log.Warn().Hex("task", t.msg.TaskID).Int("pid", p.pid).Dur("timeout", a.cfg.TaskTimeout).
		Msg("task timed out; killing its processor")
	profile := a.profile(t)
	a.finishTask(t)
	a.retire(p)
	a.send(&protocol.TaskResult{
		TaskID:  t.msg.TaskID,
		Type:    protocol.ResultFailedTimeout,
		Profile: profile,
		Message: fmt.Sprintf("task ran longer than the task timeout of %s", a.cfg.TaskTimeout),
	})
	a.dispatch()
}
