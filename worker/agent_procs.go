package worker

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// Processor supervision: messages from processors, their exits, and the
// CPU and memory figures of the tasks they run. Called on the loop
// goroutine.

func (a *agent) sendProc(p *processor, m protocol.Message) {
	a.sendProcFrame(p, protocol.MustEncode(m))
}

func (a *agent) sendProcFrame(p *processor, frame []byte) { a.writeProcessor(p, frame) }

// reap forgets an exited processor.
func (a *agent) reap(p *processor) {
	p.exited = true
	p.stat.Close()
	a.closeChannel(p)
	delete(a.procs, p.ident)
}

func (a *agent) onProcessor(p *processor, frame []byte) {
	if p.killed || p.exited {
		return // a processor we already gave up on
	}
	m, err := protocol.Decode(frame)
	if err != nil {
		a.log.Warn().Err(err).Int("pid", p.pid).Msg("dropped malformed message from a processor")
		return
	}
	switch m := m.(type) {
	case *protocol.ProcessorInitialized:
		a.onInitialized(p, m)
	case *protocol.ProcessorResult:
		a.onResult(p, m)
	case *protocol.ProcessorCanceled:
		a.onWithdrawn(p, m)
	case *protocol.ProcessorLog:
		if p.task != nil && string(m.TaskID) == p.task.key {
			a.send(&protocol.TaskLog{TaskID: m.TaskID, Type: m.Type, Content: m.Content})
		}
	default:
		a.log.Warn().Str("message", m.Kind().String()).Int("pid", p.pid).Msg("dropped unexpected message from a processor")
	}
}

func (a *agent) onInitialized(p *processor, m *protocol.ProcessorInitialized) {
	if m.Error != "" {
		a.log.Error().Int("pid", p.pid).Str("preload", a.cfg.Preload).Str("error", m.Error).
			Msgf("processor start-up failed: %s", m.Error)
		a.kill(p)
		a.stop(StopFatal, "processor start-up failed", fmt.Errorf("%w: %s", ErrPreload, m.Error))
		return
	}
	if p.initialized {
		return
	}
	p.initialized = true
	a.log.Debug().Int("pid", p.pid).Msg("processor ready")
	a.dispatch()
}

func (a *agent) onResult(p *processor, m *protocol.ProcessorResult) {
	t := p.task
	if t == nil || string(m.TaskID) != t.key {
		a.log.Warn().Int("pid", p.pid).Msg("dropped result for a task the processor does not hold")
		return
	}
	profile := a.profile(t)
	p.lastRun = time.Duration(profile.DurationS * float64(time.Second))
	p.quick = t.ran == 0 && p.lastRun < aheadBelow
	a.finishTask(t)
	switch {
	case p.suspended && len(p.ahead) > 0:
		// It finished before the suspension took effect and went on to the
		// task sent ahead, which is the one suspended now: it takes the
		// finished task's place in the queue of resumptions.
		next := a.promoteAt(p, p.lastCPU)
		next.resume = true
		next.runSince = time.Time{}
		a.queue.push(next)
	case p.suspended:
		// It finished before the suspension took effect; it may now be
		// blocked in its suspend handler, so it is not reused.
		a.kill(p)
	default:
		a.promoteAt(p, p.lastCPU)
		// Hand the processor its next task before reporting this one, so
		// that it does not sit idle while the result goes out.
		a.dispatch()
	}
	if len(m.ResultObjectID) > 0 {
		a.send(&protocol.ObjectInstruction{
			Type:       protocol.InstructionCreate,
			ObjectUser: t.msg.Source,
			Metadata: protocol.ObjectMetadata{
				ObjectIDs:    [][]byte{m.ResultObjectID},
				ContentTypes: []protocol.ObjectContentType{protocol.ContentObject},
				Names:        [][]byte{m.ResultObjectName},
			},
		})
	}
	res := &protocol.TaskResult{TaskID: m.TaskID, Type: m.Type, Profile: profile, Inline: m.Inline, Message: m.Message}
	if len(m.ResultObjectID) > 0 {
		res.Results = [][]byte{m.ResultObjectID}
	}
	a.send(res)
	a.dispatch()
}

// onWithdrawn handles ProcessorCanceled: p dropped a task sent ahead
// without running it.
func (a *agent) onWithdrawn(p *processor, m *protocol.ProcessorCanceled) {
	t, ok := a.tasks[string(m.TaskID)]
	if !ok || t.proc != p || !t.withdrawing {
		a.log.Warn().Int("pid", p.pid).Msg("dropped a cancel answer for a task the processor does not hold")
		return
	}
	if p.task == t {
		// Taken for started when the task before it ended; the processor
		// went on to the task after it instead.
		cpu := p.stat.CPU()
		a.finishTask(t)
		a.promoteAt(p, cpu)
	} else {
		a.finishTask(t)
	}
	a.send(&protocol.TaskCancelConfirm{TaskID: t.msg.TaskID, Type: protocol.CancelConfirmCanceled})
	a.dispatch()
}

// onExit handles the end of a processor process.
func (a *agent) onExit(ex procExit) {
	p := ex.p
	if !p.killed {
		a.readProcessor(p) // what it wrote before it ended (a result, say) comes first
	}
	a.requeueAhead(p)
	a.reap(p)
	if a.spare == p {
		a.spare = nil
	}
	if a.current == p {
		a.current = nil
	}
	requeued := false
	if t := p.task; t != nil && !p.received(t) {
		// Its channel had closed (it was dying, idle) or the write failed
		// before the task was wholly sent: the task never ran, so it waits
		// for the next processor instead of failing.
		switch {
		case t.withdrawing: // its cancel waited for p's answer: done, p never had it
			a.finishTask(t)
			a.send(&protocol.TaskCancelConfirm{TaskID: t.msg.TaskID, Type: protocol.CancelConfirmCanceled})
		case t.resume: // queued to resume on p (suspended): it starts afresh instead
			p.task, t.proc, t.resume = nil, nil, false
		default:
			p.task, t.proc = nil, nil
			a.queue.requeue(t)
		}
		a.log.Warn().Int("pid", p.pid).Hex("task", t.msg.TaskID).Str("exit", describeExit(ex.err)).
			Msg("processor ended before it received its task; the task waits for the next processor")
		requeued = true
	}
	if p.killed {
		a.dispatch()
		return
	}
	how := describeExit(ex.err)
	if !p.initialized {
		a.log.Error().Int("pid", p.pid).Str("exit", how).Msg("processor exited before it was ready")
		// One that exits by itself (a missing module, say) would do so again
		// in a new worker; one killed by a signal may not.
		// Only the first suggests another interpreter: a signal (a batch
		// system cancelling the job signals every process of it) says
		// nothing about the interpreter.
		cause, hint := StopFatal, " (choose the interpreter with --python or SCALER_PYTHON)"
		var ee *exec.ExitError
		if errors.As(ex.err, &ee) && ee.ExitCode() < 0 {
			cause, hint = StopFailed, ""
		}
		a.stop(cause, "processor could not start", fmt.Errorf("worker: processor (%s -m scaler.worker.processor) exited before it was ready: %s%s", a.cfg.Python, how, hint))
		return
	}
	if t := p.task; t != nil {
		failure := &protocol.TaskResult{
			TaskID:  t.msg.TaskID,
			Type:    protocol.ResultFailedProcessorDied,
			Profile: a.profile(t),
			Message: fmt.Sprintf("processor (pid %d) died while running the task: %s", p.pid, how),
		}
		if terminatedBySignal(ex.err) {
			// Slurm, systemd and a terminal's Ctrl-C send this to every
			// process of the worker, and the processor may die before the
			// agent has seen its own signal. The task is not at fault then:
			// hold it (still listed in heartbeats) for terminatedGrace, so
			// that a stop in the meantime returns it to the scheduler with
			// the worker's disconnect instead of failing it.
			a.log.Warn().Int("pid", p.pid).Str("exit", how).Dur("grace", terminatedGrace).
				Msg("processor terminated while running a task; failing the task after the grace unless this worker stops too")
			p.task, t.proc = nil, nil
			a.terminated = append(a.terminated, terminatedTask{t: t, failure: failure, due: time.Now().Add(terminatedGrace)})
		} else {
			a.log.Warn().Int("pid", p.pid).Str("exit", how).Msg("processor died while running a task; replacing it")
			a.finishTask(t)
			a.send(failure)
		}
	} else if !requeued {
		a.log.Warn().Int("pid", p.pid).Str("exit", how).Msg("idle processor died; replacing it")
	}
	a.dispatch()
}

// rssFresh bounds how stale a processor's RSS may be when a task ends. A
// /proc read costs about as much as the agent's other work for a trivial
// task, and a task that ends within this long cannot have grown its
// processor's memory by much: its RSS is read only if the last reading is
// this old, or the task ran at least this long (longer tasks are also
// sampled every profileInterval while they run).
const rssFresh = 100 * time.Millisecond

func (a *agent) profile(t *task) protocol.TaskProfile {
	p := t.proc
	now := time.Now()
	cpu := p.stat.CPU()
	p.lastCPU = cpu
	if now.Sub(p.rssAt) >= rssFresh || now.Sub(t.started) >= rssFresh {
		p.rss, p.rssAt = p.stat.RSS(), now
		if p.rss > t.rssPeak {
			t.rssPeak = p.rss
		}
	}
	prof := protocol.TaskProfile{DurationS: now.Sub(t.started).Seconds()}
	if cpu >= t.cpu0 {
		prof.CPUTimeS = float64(cpu-t.cpu0) / 1e9
	}
	if t.rssPeak > t.rss0 {
		prof.MemoryPeak = t.rssPeak - t.rss0
	}
	return prof
}

func (a *agent) sampleMemory() {
	for _, t := range a.tasks {
		if t.proc != nil && !t.proc.exited && !t.ahead {
			if rss := t.proc.stat.RSS(); rss > t.rssPeak {
				t.rssPeak = rss
			}
		}
	}
}

// terminatedGrace is how long a task whose processor was terminated waits
// for the worker's own stop before it fails (onExit). The agent sees its
// signal within milliseconds on an idle machine; this covers a loaded one.
const terminatedGrace = 2 * time.Second

type terminatedTask struct {
	t       *task
	failure *protocol.TaskResult
	due     time.Time
}

// terminatedBySignal reports whether a processor ended by a request to
// terminate (TERM, INT, HUP), the signals sent to a whole process group or
// job, rather than by a crash, an exit or SIGKILL (the OOM killer, kill -9),
// which fail the task at once.
func terminatedBySignal(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return false
	}
	switch ws.Signal() {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP:
		return true
	}
	return false
}

// terminatedDue is when the first held task fails; zero when none is held.
func (a *agent) terminatedDue() time.Time {
	if len(a.terminated) == 0 {
		return time.Time{}
	}
	return a.terminated[0].due // appended in order of due time
}

// failTerminated fails the held tasks whose grace has passed. One cancelled
// meanwhile (onCancel answered it) is gone from a.tasks and sends nothing.
func (a *agent) failTerminated(now time.Time) {
	n := 0
	for _, h := range a.terminated {
		if now.Before(h.due) {
			break
		}
		n++
		if a.tasks[h.t.key] == h.t {
			a.finishTask(h.t)
			a.send(h.failure)
		}
	}
	a.terminated = a.terminated[n:]
}
