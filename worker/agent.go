package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/transport"
)

// ErrPreload is wrapped by the error Run returns when the preload hook failed.
var ErrPreload = errors.New("preload failed")

// profileInterval is how often the RSS of running processors is sampled for
// the memory_peak of task profiles.
const profileInterval = time.Second

// agent is the state of one worker. Everything in it is owned by the loop
// goroutine (run), which waits in one poller for the scheduler socket, every
// processor's channel and the waker; other goroutines (process waits, the
// context) report through channels and wake it.
type agent struct {
	cfg Config
	log zerolog.Logger
	id  []byte

	sched  *transport.Socket // DEALER to the scheduler
	poller *transport.Poller
	waker  *transport.Waker
	byFd   map[int]*processor // processors by their channel's descriptor

	storage      protocol.Address
	storageKnown bool
	storageWatch *storageWatch // nil until storageKnown; see storagewatch.go

	// The scheduler instance the agent's work came from, and whether the
	// connection to the scheduler is down (see schedwatch.go).
	instance   []byte      // nil until an echo carried one
	schedWatch *schedWatch // nil for an address that cannot be watched
	schedDown  bool        // lost and no echo since: start no task
	schedBack  bool        // while schedDown: a connection is established again

	queue   taskQueue
	tasks   map[string]*task // queued, running and suspended tasks
	procs   map[string]*processor
	current *processor // runs tasks; nil while none exists
	spare   *processor // an idle initialized processor kept for the next suspension
	procSeq uint64
	exits   chan procExit
	quit    chan struct{} // closed when the agent has finished

	deadline time.Time // when the running task times out; zero: no limit

	hbSent     time.Time // zero when no heartbeat is outstanding
	echoSeq    uint64    // Seq of the last WorkerHeartbeatEcho, sent back in heartbeats
	latencyUS  uint32
	lastSeen   time.Time // last message from the scheduler (or start-up)
	selfStat   *procStat
	selfCPU    cpuMeter
	stopReason string
	stopCause  StopCause
	stopErr    error

	// out holds the frames for the scheduler produced in this loop
	// iteration; flushOut sends them, several as one Batch.
	out [][]byte
}

// Run runs one worker until ctx is done, the scheduler tells it to shut
// down, the death timeout expires or a fatal error (such as a failing
// preload) occurs. It returns nil for a clean stop.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	_, err := RunWithCause(ctx, cfg, log)
	return err
}

// RunWithCause is Run that also says why the worker stopped.
func RunWithCause(ctx context.Context, cfg Config, log zerolog.Logger) (StopCause, error) {
	cfg.setDefaults()
	a := &agent{
		cfg:      cfg,
		log:      log.With().Str("worker", cfg.WorkerID).Logger(),
		id:       []byte(cfg.WorkerID),
		tasks:    make(map[string]*task),
		procs:    make(map[string]*processor),
		exits:    make(chan procExit, 16),
		quit:     make(chan struct{}),
		byFd:     make(map[int]*processor),
		selfStat: openProcStat(0),
	}
	defer a.selfStat.close()
	if cfg.ObjectStorageAddress != "" {
		addr, err := parseStorageAddress(cfg.ObjectStorageAddress)
		if err != nil {
			return StopFatal, err
		}
		a.storage, a.storageKnown = addr, true
	}
	if err := a.open(); err != nil {
		return StopFailed, err
	}
	err := a.run(ctx)
	return a.stopCause, err
}

func parseStorageAddress(s string) (protocol.Address, error) {
	scheme, host, port, err := transport.ParseAddress(s)
	if err != nil || scheme != "tcp" {
		return protocol.Address{}, fmt.Errorf("object storage address %q: want tcp://HOST:PORT", s)
	}
	return protocol.Address{Host: host, Port: uint16(port)}, nil
}

func (a *agent) open() (err error) {
	defer func() {
		if err != nil {
			a.closeSockets()
		}
	}()
	if a.poller, err = transport.NewPoller(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if a.waker, err = transport.NewWaker(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if err = a.poller.Add(a.waker.Fd(), false); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if a.sched, err = transport.Open(transport.Dealer, a.cfg.SchedulerAddress, false, transport.Options{Identity: a.id}); err != nil {
		return fmt.Errorf("worker: scheduler socket: %w", err)
	}
	if err = a.poller.Add(a.sched.Fd(), false); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// closeSockets releases the scheduler socket, the poller and the waker.
func (a *agent) closeSockets() {
	if a.sched != nil {
		_ = a.sched.Close()
	}
	if a.poller != nil {
		_ = a.poller.Close()
	}
	if a.waker != nil {
		_ = a.waker.Close()
	}
}

func (a *agent) run(ctx context.Context) error {
	// The loop blocks only in epoll_wait and zmq calls: on its own thread
	// it does not move between threads after each of them.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a.log.Info().Str("scheduler", a.cfg.SchedulerAddress).Int("pid", os.Getpid()).
		Msgf("worker %s started", a.cfg.WorkerID)
	now := time.Now()
	a.lastSeen = now
	nextHeartbeat := now.Add(a.cfg.HeartbeatInterval)
	nextProfile := now.Add(profileInterval)
	deathEvery := deathCheckInterval(a.cfg.DeathTimeout)
	nextDeathCheck := now.Add(deathEvery)
	a.startStorageWatch()
	a.schedWatch = watchScheduler(a.cfg.SchedulerAddress, a.log, a.quit, a.waker.Wake)

	// The context is the only outside event without a channel of ours.
	go func() {
		select {
		case <-ctx.Done():
			a.waker.Wake()
		case <-a.quit:
		}
	}()

	a.ensureCurrent()
	a.sendHeartbeat(now)
	a.flushOut()

	for a.stopReason == "" {
		if ctx.Err() != nil {
			a.stop(StopSignal, "signal", nil)
			break
		}
		// The scheduler socket's descriptor is only a hint (transport.Socket):
		// read until it is empty, then ask it whether to sleep.
		if !a.readScheduler() {
			break
		}
		a.flushOut()
		readable, unsent, err := a.sched.Pending()
		if err != nil {
			a.stop(StopFailed, "scheduler socket failed", fmt.Errorf("worker: %w", err))
			break
		}
		now = time.Now()
		wake := earliest(nextHeartbeat, nextProfile, nextDeathCheck, a.deadline)
		wait := max(wake.Sub(now), 0)
		if readable {
			wait = 0
		} else if unsent {
			_ = a.sched.Flush()
			wait = min(wait, 10*time.Millisecond)
		}
		ready, err := a.poller.Wait(wait)
		if err != nil {
			a.stop(StopFailed, "poll failed", fmt.Errorf("worker: %w", err))
			break
		}
		for _, r := range ready {
			switch {
			case r.Fd == a.waker.Fd():
				a.waker.Drain()
				a.drainExits()
				select {
				case err := <-a.storageWatch.Lost():
					a.onStorageLost(err)
				default:
				}
				a.drainSchedEvents()
			case r.Fd == a.sched.Fd():
				// read at the top of the loop
			default:
				p := a.byFd[r.Fd]
				if p == nil {
					continue
				}
				if r.Writable {
					a.flushProcessor(p)
				}
				if r.Readable {
					a.readProcessor(p)
				}
			}
		}
		now = time.Now()
		if !now.Before(nextHeartbeat) {
			nextHeartbeat = now.Add(a.cfg.HeartbeatInterval)
			a.sendHeartbeat(now)
		}
		if !now.Before(nextProfile) {
			nextProfile = now.Add(profileInterval)
			a.sampleMemory()
		}
		if !now.Before(nextDeathCheck) {
			nextDeathCheck = now.Add(deathEvery)
			if now.Sub(a.lastSeen) >= a.cfg.DeathTimeout {
				a.stop(StopDeathTimeout, fmt.Sprintf("no contact with the scheduler for %s (death timeout)", a.cfg.DeathTimeout.Round(time.Second)), nil)
			}
		}
		if !a.deadline.IsZero() && !now.Before(a.deadline) {
			a.checkTimeout(now)
		}
		a.flushOut()
	}
	return a.shutdown()
}

// earliest returns the earliest non-zero time of ts.
func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}

// readScheduler handles every message waiting on the scheduler socket. It
// returns false when the socket failed (the agent is then stopping).
func (a *agent) readScheduler() bool {
	for i := 0; i < 4096; i++ {
		msg, err := a.sched.TryRecv()
		if err != nil {
			a.stop(StopFailed, "scheduler socket failed", fmt.Errorf("worker: scheduler socket: %w", err))
			return false
		}
		if msg == nil {
			return true
		}
		a.onScheduler(msg)
	}
	return true
}

// drainExits handles every processor exit reported so far.
func (a *agent) drainExits() {
	for {
		select {
		case ex := <-a.exits:
			a.onExit(ex)
		default:
			return
		}
	}
}

// drainSchedEvents handles every scheduler connection change reported so far.
func (a *agent) drainSchedEvents() {
	for {
		select {
		case ev := <-a.schedWatch.Events():
			a.onSchedEvent(ev, time.Now())
		default:
			return
		}
	}
}

func deathCheckInterval(d time.Duration) time.Duration {
	if d < 4*time.Second {
		return 250 * time.Millisecond
	}
	return time.Second
}

// stop ends the loop after this iteration; the first cause counts.
func (a *agent) stop(cause StopCause, reason string, err error) {
	if a.stopReason == "" {
		a.stopCause, a.stopReason, a.stopErr = cause, reason, err
	}
}

// shutdown tells the scheduler, stops every processor and releases the
// sockets. It waits (bounded) for the processors to exit.
func (a *agent) shutdown() error {
	a.send(&protocol.DisconnectRequest{Worker: a.id})
	a.flushOut()
	for _, p := range a.procs {
		a.kill(p)
	}
	deadline := time.After(a.cfg.KillDelay + 2*time.Second)
	for a.liveProcs() > 0 {
		select {
		case ex := <-a.exits:
			a.reap(ex.p)
		case <-deadline:
			a.log.Warn().Int("processors", a.liveProcs()).Msg("processors did not exit in time")
			goto closed
		}
	}
closed:
	close(a.quit)
	for _, p := range a.procs {
		a.closeChannel(p)
	}
	a.closeSockets()
	ev := a.log.Info()
	if a.stopErr != nil {
		ev = a.log.Error().Err(a.stopErr)
	}
	ev.Str("reason", a.stopReason).Msgf("worker %s stopped: %s", a.cfg.WorkerID, a.stopReason)
	return a.stopErr
}

func (a *agent) liveProcs() int { return len(a.procs) }

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

func (a *agent) sendProc(p *processor, m protocol.Message) {
	a.sendProcFrame(p, protocol.MustEncode(m))
}

func (a *agent) sendProcFrame(p *processor, frame []byte) { a.writeProcessor(p, frame) }

// reap forgets an exited processor.
func (a *agent) reap(p *processor) {
	p.exited = true
	p.stat.close()
	a.closeChannel(p)
	delete(a.procs, p.ident)
}

// ---- messages from the scheduler ----

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
			if scheme, host, _, err := transport.ParseAddress(a.cfg.SchedulerAddress); err == nil {
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

// ---- messages from processors ----

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
	p.quick = t.ran == 0 && time.Duration(profile.DurationS*float64(time.Second)) < aheadBelow
	a.finishTask(t)
	switch {
	case p.suspended && p.ahead != nil:
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
		cpu := p.stat.cpu()
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
	if p.killed {
		a.dispatch()
		return
	}
	how := describeExit(ex.err)
	if !p.initialized {
		a.log.Error().Int("pid", p.pid).Str("exit", how).Msg("processor exited before it was ready")
		// One that exits by itself (a missing module, say) would do so again
		// in a new worker; one killed by a signal may not.
		cause := StopFatal
		var ee *exec.ExitError
		if errors.As(ex.err, &ee) && ee.ExitCode() < 0 {
			cause = StopFailed
		}
		a.stop(cause, "processor could not start", fmt.Errorf("worker: processor (%s -m scaler.worker.processor) exited before it was ready: %s (choose the interpreter with --python or SCALER_PYTHON)", a.cfg.Python, how))
		return
	}
	if t := p.task; t != nil {
		a.log.Warn().Int("pid", p.pid).Str("exit", how).Msg("processor died while running a task; replacing it")
		profile := a.profile(t)
		a.finishTask(t)
		a.send(&protocol.TaskResult{
			TaskID:  t.msg.TaskID,
			Type:    protocol.ResultFailedProcessorDied,
			Profile: profile,
			Message: fmt.Sprintf("processor (pid %d) died while running the task: %s", p.pid, how),
		})
	} else {
		a.log.Warn().Int("pid", p.pid).Str("exit", how).Msg("idle processor died; replacing it")
	}
	a.dispatch()
}

// ---- scheduling ----

// ensureCurrent makes sure a processor exists to run the next task.
func (a *agent) ensureCurrent() bool {
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

// dispatch starts or resumes the best queued task if nothing is running.
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
}

// aheadBelow: a processor is sent its next task ahead of time only while
// its tasks take less than this. Then the agent's turn-around between tasks
// (tens of µs) is worth saving, and a cancel of the task sent ahead, which
// the processor can only answer between tasks, waits little; for longer
// tasks the saving is negligible and a cancel must not wait.
const aheadBelow = 2 * time.Millisecond

// fillAhead sends the running processor its next task now, so that it goes
// on without waiting for the agent when the current one ends (docs/protocol.md
// §7.5, "Sending ahead"). Only a task of the same priority goes ahead: one
// of higher priority would suspend the running task instead, and one of
// lower priority must not overtake anything that arrives meanwhile.
func (a *agent) fillAhead() {
	p := a.current
	if p == nil || p.task == nil || p.suspended || p.ahead != nil || p.killed || p.fd < 0 || !p.quick {
		return
	}
	t := a.queue.peek()
	if t == nil || t.resume || t.priority != p.task.priority {
		return
	}
	a.queue.pop()
	t.proc, t.ahead, p.ahead = p, true, t
	a.sendTask(p, t)
}

// promoteAt starts the task sent ahead to p, if any, now that the task
// before it has ended; cpu is p's CPU time at that moment. It returns the
// promoted task.
func (a *agent) promoteAt(p *processor, cpu uint64) *task {
	t := p.ahead
	if t == nil {
		return nil
	}
	p.ahead, t.ahead, p.task = nil, false, t
	a.begin(p, t, cpu)
	return t
}

// requeueAhead takes back the task sent ahead to p, which p will not run
// (it is being killed, or died with another task): the task goes back to
// the queue in its old place, or, if its cancel was pending, is cancelled.
func (a *agent) requeueAhead(p *processor) {
	t := p.ahead
	if t == nil {
		return
	}
	p.ahead, t.ahead, t.proc = nil, false, nil
	if t.withdrawing {
		t.withdrawing = false
		delete(a.tasks, t.key)
		a.send(&protocol.TaskCancelConfirm{TaskID: t.msg.TaskID, Type: protocol.CancelConfirmCanceled})
		return
	}
	a.queue.requeue(t)
}

// start hands task t to the idle processor p.
func (a *agent) start(p *processor, t *task) {
	t.proc = p
	p.task = t
	a.begin(p, t, p.stat.cpu())
	a.sendTask(p, t)
}

// begin marks t as started on p now: its profile and timeout count from
// here, with cpu as p's CPU time at this moment.
func (a *agent) begin(p *processor, t *task, cpu uint64) {
	now := time.Now()
	t.started, t.runSince = now, now
	t.cpu0 = cpu
	if p.rss == 0 {
		p.rss, p.rssAt = p.stat.rss(), now
	}
	t.rss0 = p.rss // what it was when the processor last finished a task
	t.rssPeak = t.rss0
}

// sendTask sends t to p. Arguments go through as they came (object ids and
// inline bytes); ArgumentIDs stays empty, as docs/protocol.md §7.5 allows.
func (a *agent) sendTask(p *processor, t *task) {
	a.sendProc(p, &protocol.ProcessorTask{
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
	})
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
		if p.ahead == t {
			p.ahead = nil
		}
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

// ---- profiling and heartbeats ----

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
	cpu := p.stat.cpu()
	p.lastCPU = cpu
	if now.Sub(p.rssAt) >= rssFresh || now.Sub(t.started) >= rssFresh {
		p.rss, p.rssAt = p.stat.rss(), now
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
			if rss := t.proc.stat.rss(); rss > t.rssPeak {
				t.rssPeak = rss
			}
		}
	}
}

func (a *agent) sendHeartbeat(now time.Time) {
	// One heartbeat outstanding at a time, but a lost echo must not silence
	// the worker for good: resend after three intervals.
	if !a.hbSent.IsZero() && now.Sub(a.hbSent) < 3*a.cfg.HeartbeatInterval {
		return
	}
	nowNS := now.UnixNano()
	cpu, rss := a.selfStat.cpu(), a.selfStat.rss()
	hb := &protocol.WorkerHeartbeat{
		Agent:        protocol.Resource{CPU: a.selfCPU.permille(cpu, nowNS), RSS: rss},
		RSSFree:      memAvailable(),
		QueueSize:    uint32(a.cfg.QueueSize),
		LatencyUS:    a.latencyUS,
		TaskLock:     a.current != nil && a.current.initialized && !a.running() && a.storageKnown,
		Capabilities: a.cfg.Capabilities,
		EchoSeq:      a.echoSeq,
		// Every task held, so that the scheduler can tell a task or result
		// lost on the way (docs/protocol.md, "Reconciliation").
		Tasks: make([][]byte, 0, len(a.tasks)),
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
		pc, pr := p.stat.cpu(), p.stat.rss()
		hb.Processors = append(hb.Processors, protocol.ProcessorStatus{
			PID:         uint32(p.pid),
			Initialized: p.initialized,
			HasTask:     p.task != nil,
			Suspended:   p.suspended,
			Resource:    protocol.Resource{CPU: p.cpu.permille(pc, nowNS), RSS: pr},
		})
	}
	if hb.Capabilities == nil {
		hb.Capabilities = map[string]int64{}
	}
	a.hbSent = now
	a.send(hb)
}
