package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/procstat"
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

	// Tasks whose processor was terminated (SIGTERM, SIGINT, SIGHUP) while
	// running them, failed only after terminatedGrace unless the worker
	// stops first (agent_procs.go, onExit).
	terminated []terminatedTask

	hbSent     time.Time // zero when no heartbeat is outstanding
	echoSeq    uint64    // Seq of the last WorkerHeartbeatEcho, sent back in heartbeats
	latencyUS  uint32
	lastSeen   time.Time // last message from the scheduler (or start-up)
	selfStat   *procstat.Process
	selfCPU    procstat.CPUMeter
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
		cfg:   cfg,
		log:   log.With().Str("worker", cfg.WorkerID).Logger(),
		id:    []byte(cfg.WorkerID),
		tasks: make(map[string]*task),
		procs: make(map[string]*processor),
		exits: make(chan procExit, 16),
		quit:  make(chan struct{}),
		byFd:  make(map[int]*processor),
	}
	if cfg.inProcess {
		// The process is the combo's: its scheduler's and every agent's.
		// This agent's share is its loop's thread; its memory cannot be
		// told apart, and reads 0 ("not measured").
		a.selfStat = procstat.OpenThread()
	} else {
		a.selfStat = procstat.Open(0)
	}
	defer a.selfStat.Close()
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

// closeSockets releases the scheduler socket, the poller and the waker
// (each Close takes a nil receiver, for what a failed start did not make).
func (a *agent) closeSockets() {
	_ = a.sched.Close()
	_ = a.poller.Close()
	_ = a.waker.Close()
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
	// A relayed worker's address is the relay's (ipc://): not watched, so
	// that it opens no connection of its own to the scheduler.
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
		now = time.Now()
		wait, err := a.sched.PollWait(earliest(nextHeartbeat, nextProfile, nextDeathCheck, a.deadline, a.terminatedDue()).Sub(now), false)
		if err != nil {
			a.stop(StopFailed, "scheduler socket failed", fmt.Errorf("worker: %w", err))
			break
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
		a.failTerminated(now)
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
