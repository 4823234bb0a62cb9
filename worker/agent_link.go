package worker

import (
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/procstat"
	"github.com/opengris/scaler/transport"
)

// The scheduler link: frames to the scheduler are queued by send and sent
// once per loop iteration by flushOut; messages from it are handled here;
// heartbeats go out from here. Called on the loop goroutine.

// send encodes m and queues it for the scheduler; it goes out at the end
// of the loop iteration (flushOut).
func (a *agent) send(m protocol.Message) {
	a.out = append(a.out, protocol.MustEncode(m))
}

// flushOut sends the queued frames in order, several as one Batch
// (docs/protocol.md §7.6).
func (a *agent) flushOut() {
	if len(a.out) == 0 {
		return
	}
	for _, f := range protocol.Coalesce(a.out) {
		if err := a.sched.Send(f); err != nil && !errors.Is(err, transport.ErrClosed) {
			a.log.Warn().Err(err).Msg("send to scheduler failed")
		}
	}
	clear(a.out)
	a.out = a.out[:0]
}

func (a *agent) onScheduler(msg [][]byte) {
	if len(msg) != 1 {
		a.log.Warn().Int("frames", len(msg)).Msg("dropped multi-part message from the scheduler")
		return
	}
	m, err := protocol.Decode(msg[0])
	if err != nil {
		a.log.Warn().Err(err).Msg("dropped malformed message from the scheduler")
		return
	}
	a.lastSeen = time.Now()
	if b, ok := m.(*protocol.Batch); ok {
		// Each element as if it had arrived alone, in order.
		b.Each(func(frame []byte, m protocol.Message, err error) {
			if err != nil {
				a.log.Warn().Err(err).Msg("dropped malformed message in a Batch from the scheduler")
				return
			}
			a.onSchedulerMessage(frame, m)
		})
		return
	}
	a.onSchedulerMessage(msg[0], m)
}

// onSchedulerMessage handles one decoded message; frame is its encoding.
func (a *agent) onSchedulerMessage(frame []byte, m protocol.Message) {
	switch m := m.(type) {
	case *protocol.Task:
		a.onTask(m)
	case *protocol.TaskCancel:
		a.onCancel(m)
	case *protocol.WorkerHeartbeatEcho:
		a.onEcho(m)
	case *protocol.ObjectInstruction:
		if m.Type == protocol.InstructionDelete {
			for _, p := range a.procs {
				switch {
				case !p.initialized || p.killed:
				case p.suspended:
					// A suspended processor does not read its channel; filling
					// it would block this loop. It gets the evictions on resume.
					p.deferred = append(p.deferred, frame)
				default:
					a.sendProcFrame(p, frame)
				}
			}
		}
	case *protocol.ClientDisconnect:
		if m.Type == protocol.DisconnectShutdown {
			a.stop(StopShutdown, "the scheduler asked workers to shut down", nil)
		}
	case *protocol.DisconnectResponse:
	default:
		a.log.Warn().Str("message", m.Kind().String()).Msg("dropped unexpected message from the scheduler")
	}
}

func (a *agent) onEcho(m *protocol.WorkerHeartbeatEcho) {
	// Not max(): a new scheduler instance counts from 1 again.
	a.echoSeq = m.Seq
	if !a.hbSent.IsZero() {
		a.latencyUS = uint32(time.Since(a.hbSent).Microseconds() / 2)
		a.hbSent = time.Time{}
	}
	newInstance := a.onInstance(m.InstanceID) // drops the old instance's work first
	defer a.onEchoWhileDown(newInstance)
	if !a.storageKnown && m.ObjectStorage.Port != 0 {
		addr := m.ObjectStorage
		switch addr.Host {
		case "", "*", "0.0.0.0", "::", "[::]":
			// A wildcard: the storage is on the host we reached the scheduler at
			// (this one, for an ipc:// or inproc:// scheduler address).
			reached := a.cfg.SchedulerAddress
			if a.cfg.UpstreamAddress != "" {
				reached = a.cfg.UpstreamAddress
			}
			if scheme, host, _, err := transport.ParseAddress(reached); err == nil {
				addr.Host = host
				if scheme != "tcp" {
					addr.Host = "127.0.0.1"
				}
			}
		}
		a.storage, a.storageKnown = addr, true
		a.startStorageWatch()
		a.log.Info().Str("object_storage", net.JoinHostPort(addr.Host, strconv.Itoa(int(addr.Port)))).
			Msg("object storage address learnt from the scheduler")
		a.dispatch()
	}
}

func (a *agent) onTask(m *protocol.Task) {
	if len(m.TaskID) == 0 {
		a.log.Warn().Msg("dropped task without id")
		return
	}
	key := string(m.TaskID)
	if _, dup := a.tasks[key]; dup {
		a.log.Warn().Hex("task", m.TaskID).Msg("dropped duplicate task")
		return
	}
	t := &task{msg: m, key: key, index: -1}
	a.tasks[key] = t
	a.queue.push(t)
	// A strictly higher priority task suspends the running one (a nested
	// task waited on by its parent must not wait behind it).
	if cur := a.current; cur != nil && cur.task != nil && !cur.suspended && cur.task.msg.Priority < m.Priority {
		a.suspend(cur)
	}
	a.dispatch()
}

func (a *agent) onCancel(m *protocol.TaskCancel) {
	t, ok := a.tasks[string(m.TaskID)]
	confirm := func(typ protocol.TaskCancelConfirmType) {
		a.send(&protocol.TaskCancelConfirm{TaskID: m.TaskID, Type: typ})
	}
	switch {
	case !ok:
		confirm(protocol.CancelConfirmNotFound)
	case t.proc == nil: // queued, never started
		a.queue.remove(t)
		delete(a.tasks, t.key)
		confirm(protocol.CancelConfirmCanceled)
	case t.ahead || t.withdrawing:
		// Sent ahead and maybe not started: the processor drops it if it
		// has not (ProcessorCanceled, confirmed then); if its result comes
		// instead, it had run, and the result is the answer.
		if !t.withdrawing {
			t.withdrawing = true
			a.sendProc(t.proc, &protocol.ProcessorCancel{TaskID: t.msg.TaskID})
		}
	case !m.Force:
		confirm(protocol.CancelConfirmFailed)
	default: // running or suspended, forced: stop its processor
		p := t.proc
		a.finishTask(t)
		a.retire(p)
		confirm(protocol.CancelConfirmCanceled)
		a.dispatch()
	}
}

func (a *agent) sendHeartbeat(now time.Time) {
	// One heartbeat outstanding at a time, but a lost echo must not silence
	// the worker for good: resend after three intervals.
	if !a.hbSent.IsZero() && now.Sub(a.hbSent) < 3*a.cfg.HeartbeatInterval {
		return
	}
	nowNS := now.UnixNano()
	cpu, rss := a.selfStat.CPU(), a.selfStat.RSS()
	hb := &protocol.WorkerHeartbeat{
		Agent:        protocol.Resource{CPU: a.selfCPU.Permille(cpu, nowNS), RSS: rss},
		RSSFree:      procstat.MemAvailable(),
		QueueSize:    uint32(a.cfg.QueueSize),
		LatencyUS:    a.latencyUS,
		TaskLock:     a.current != nil && a.current.initialized && !a.running() && a.storageKnown,
		Capabilities: a.cfg.Capabilities,
		EchoSeq:      a.echoSeq,
		// Every task held, so that the scheduler can tell a task or result
		// lost on the way (docs/protocol.md, "Reconciliation").
		Tasks: make([][]byte, 0, len(a.tasks)),
	}
	if a.cfg.Slot != "" {
		hb.Slot = []byte(a.cfg.Slot)
	}
	for _, t := range a.tasks {
		hb.Tasks = append(hb.Tasks, t.msg.TaskID)
	}
	for _, t := range a.queue.items {
		if !t.resume {
			hb.QueuedTasks++
		}
	}
	for _, p := range a.procs {
		if p.killed || !p.initialized {
			continue
		}
		pc, pr := p.stat.CPU(), p.stat.RSS()
		hb.Processors = append(hb.Processors, protocol.ProcessorStatus{
			PID:         uint32(p.pid),
			Initialized: p.initialized,
			HasTask:     p.task != nil,
			Suspended:   p.suspended,
			Resource:    protocol.Resource{CPU: p.cpu.Permille(pc, nowNS), RSS: pr},
		})
	}
	if hb.Capabilities == nil {
		hb.Capabilities = map[string]int64{}
	}
	a.hbSent = now
	a.send(hb)
}
