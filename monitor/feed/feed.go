// Package feed subscribes to a scheduler's status feed (its monitor PUB
// socket, tcp://HOST:P+2) and keeps a bounded model of it for the monitors:
// the newest StateScheduler, recent finished tasks, tasks on workers,
// tasks finished per second and cumulative totals.
//
// Every table has a fixed bound, so a large or hostile feed costs at most a
// few megabytes: the feed is network input and is treated as untrusted.
// The model survives the scheduler going away and coming back: zmq
// reconnects the SUB socket by itself, the Monitor marks the State Stale
// while nothing arrives and counts the returns in Restarts (a restart
// faster than the timeout is seen by the status's instance id).
//
// The scheduler drops monitor messages for a subscriber that falls 10,000
// behind, so task events can be missing. The status's counts are
// cumulative, so Totals and Finished are corrected from them and stay exact
// while the scheduler runs, and the running table is corrected from the
// per-worker counts; only the task log (Tasks) lacks the lost tasks.
// State.Missed says how many messages this monitor lost.
package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/transport"
)

// Bounds of the model. A feed cannot make any table larger than these.
const (
	// MaxTasks is how many recent finished tasks State.Tasks keeps.
	MaxTasks = 1000
	// MaxRunning is how many tasks on workers are tracked; past it the
	// oldest entry is forgotten (its finish event may have been dropped).
	MaxRunning = 10000
	// Seconds is the length of State.Finished.
	Seconds = 300
	// maxIDLen, maxWorkerLen and maxNameLen cap the bytes kept from a task
	// id, a worker id and a function name. Worker ids ("pid|Worker|host|
	// hex") must stay whole: they are matched against the status.
	maxIDLen     = 64
	maxWorkerLen = 512
	maxNameLen   = 256
	// maxMsgSize is the largest frame accepted from the scheduler (libzmq
	// disconnects a publisher that sends more): a status of 1,000 workers
	// with 32 processors each is about 2.3 MiB.
	maxMsgSize = 16 << 20
	// maxReconcileWorkers: a status listing more workers than this is not
	// used to correct the running table (a bound on the work per status).
	maxReconcileWorkers = 100000
	// recvHWM and recvBuffer bound what libzmq and the transport queue for
	// us when we fall behind, in messages (the scheduler keeps 10,000 more).
	recvHWM    = 2000
	recvBuffer = 256
	// DefaultTimeout is used when Options.Timeout is 0.
	DefaultTimeout = 5 * time.Second
)

// Options configure a Monitor.
type Options struct {
	Address string        // tcp://HOST:P+2, the scheduler's monitor (PUB) address
	Timeout time.Duration // no message for this long => State.Stale (default 5 s)
	Log     zerolog.Logger
}

// State is a consistent copy of the model. Consumers may keep it: nothing in
// it is shared with the Monitor.
type State struct {
	Address  string
	Status   *protocol.StateScheduler // newest StateScheduler; nil before the first one
	Updated  time.Time                // arrival time of the newest message of any kind; zero = never
	Stale    bool                     // nothing arrived within Timeout (scheduler down / not started)
	Restarts int                      // times the feed came back after being stale
	Tasks    []Task                   // recent finished tasks, newest first, at most MaxTasks
	Running  []Task                   // tasks currently on a worker, oldest first, at most MaxRunning
	Finished []Second                 // tasks finished per second, last Seconds seconds, oldest first
	Totals   Totals                   // cumulative counters since this monitor started
	Dropped  uint64                   // status messages the scheduler dropped for slow subscribers (from the status)
	// Missed counts the messages this monitor did not receive although the
	// scheduler published them (from the status's MonitorSent): exact,
	// while Dropped is the scheduler's lower bound over all subscribers.
	Missed uint64
}

// Task is one task as seen on the feed.
type Task struct {
	ID       string // hex
	Function string // function name, "" if unknown
	Worker   string // worker id
	State    protocol.TaskState
	Start    time.Time     // when it was seen Running (zero if not seen)
	End      time.Time     // when it was seen finished
	Duration time.Duration // from the profile if present, else End-Start
	PeakMem  uint64        // bytes, from the profile; 0 if unknown
}

// Second counts the tasks whose finish event arrived within one second.
type Second struct {
	At                        time.Time // start of the second
	Success, Failed, Canceled uint64
}

// Totals are cumulative counters since the Monitor started.
type Totals struct {
	Finished map[protocol.TaskState]uint64 // by terminal state
}

// Monitor subscribes to the feed, keeps the newest status and aggregates
// task events. Safe for concurrent use: Run on one goroutine, State and
// Changed from any.
type Monitor struct {
	opt     Options
	changed chan struct{}
	now     func() time.Time // tests replace it

	mu sync.Mutex
	m  model
}

// New returns a Monitor for o. It does nothing until Run.
func New(o Options) *Monitor {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	mon := &Monitor{opt: o, changed: make(chan struct{}, 1), now: time.Now}
	mon.m.init(o.Address)
	return mon
}

// Changed receives (non-blocking, coalesced) after new data and after the
// feed turns stale.
func (m *Monitor) Changed() <-chan struct{} { return m.changed }

func (m *Monitor) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// State returns a consistent copy of the model.
func (m *Monitor) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m.snapshot(m.now(), m.opt.Timeout)
}

// Run subscribes and updates the model until ctx is done (it then returns
// nil). A scheduler that goes away and comes back is picked up again; only a
// socket that cannot be created at all is an error.
func (m *Monitor) Run(ctx context.Context) error {
	sub, err := transport.Connect(transport.Sub, m.opt.Address, transport.Options{
		RecvHWM:    recvHWM,
		RecvBuffer: recvBuffer,
		MaxMsgSize: maxMsgSize,
	})
	if err != nil {
		return fmt.Errorf("feed: subscribe to %s: %w", m.opt.Address, err)
	}
	defer sub.Close()
	m.opt.Log.Info().Str("address", m.opt.Address).Msg("subscribed to the scheduler's status feed")

	tick := m.opt.Timeout / 4
	if tick > time.Second {
		tick = time.Second
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var badFrames uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			m.mu.Lock()
			turned, last := m.m.checkStale(m.now(), m.opt.Timeout), m.m.updated
			m.mu.Unlock()
			if turned {
				ev := m.opt.Log.Warn().Str("address", m.opt.Address)
				if !last.IsZero() {
					ev = ev.Time("last_update", last)
				}
				ev.Msgf("status feed stopped: nothing for %v", m.opt.Timeout)
				m.notify()
			}
		case msg, ok := <-sub.Recv():
			if !ok {
				err := sub.Err()
				if err == nil || errors.Is(err, transport.ErrClosed) {
					return nil
				}
				return fmt.Errorf("feed: %w", err)
			}
			// Take what else is ready (bounded) under one lock, then
			// notify once: consumers are woken per batch, not per task.
			m.mu.Lock()
			now := m.now()
			back, bad := m.m.handle(now, m.opt.Timeout, msg)
		batch:
			for i := 0; i < 256; i++ {
				select {
				case more, ok := <-sub.Recv():
					if !ok {
						break batch // seen closed on the next turn
					}
					b2, bad2 := m.m.handle(now, m.opt.Timeout, more)
					back, bad = back || b2, bad+bad2
				default:
					break batch
				}
			}
			restarts := m.m.restarts
			m.mu.Unlock()
			if back {
				m.opt.Log.Info().Str("address", m.opt.Address).Int("restarts", restarts).Msg("status feed is back")
			}
			if bad > 0 {
				if badFrames == 0 {
					m.opt.Log.Warn().Str("address", m.opt.Address).Msg("undecodable frames on the status feed (logged once)")
				}
				badFrames += uint64(bad)
			}
			m.notify()
		}
	}
}
