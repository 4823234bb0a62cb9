package worker

import (
	"bytes"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/transport"
)

// A scheduler that restarts (crash, kill, upgrade) comes back on the same
// address with none of the previous instance's tasks, and nobody receives
// results for work that instance handed out. The worker must therefore not
// spend its time on that work (docs/protocol.md §7.2):
//
//   - Every heartbeat echo carries the scheduler's instance id, random per
//     scheduler process start. The agent remembers the id of the instance
//     its work came from; an echo with another id means a restart, and the
//     agent drops everything it holds (dropInstance) before it handles any
//     message of the new instance. The scheduler sends the echo that answers
//     a registering worker's heartbeat before any Task, so no new task is
//     dropped by mistake.
//   - Until that echo arrives the old work would keep running: the heartbeat
//     that reaches the new scheduler may be seconds away. So the agent also
//     watches its connection to the scheduler (a transport.Watch, like the one
//     on object storage). When the connection is lost it starts no further
//     task (running ones go on: the loss may be a network blip) until an
//     echo arrives; when a connection is established again it sends a
//     heartbeat at once, so that the echo, and with it the verdict (same
//     instance: carry on; another: drop), comes within a round trip.
//
// The watch needs a tcp address; over ipc:// or inproc:// only the echo
// counts (the drop still happens before any new task runs).

// schedEvent is a change of the watched scheduler connection.
type schedEvent uint8

const (
	schedConnected schedEvent = iota + 1 // a connection was established
	schedLost                            // the established connection ended
)

// schedWatchRetry is the pause before watching again after a watch failed
// to start (it does not fail while the address is fine).
const schedWatchRetry = time.Second

// schedWatch watches the connection to the scheduler, one transport.Watch
// after the other (a Watch reports one loss and ends).
type schedWatch struct {
	events chan schedEvent
}

// watchScheduler starts watching addr; it stops when quit is closed. Each
// event is followed by a call of wake. It returns nil for an address that
// cannot be watched.
func watchScheduler(addr string, log zerolog.Logger, quit <-chan struct{}, wake func()) *schedWatch {
	if scheme, _, _, err := transport.ParseAddress(addr); err != nil || scheme != "tcp" {
		return nil
	}
	// Events are few (two per connection) and the agent reads them every
	// time it is woken; the goroutine waits when the buffer is full.
	s := &schedWatch{events: make(chan schedEvent, 4)}
	go s.run(addr, log, quit, wake)
	return s
}

// Events delivers the connection changes. A nil watch never delivers.
func (s *schedWatch) Events() <-chan schedEvent {
	if s == nil {
		return nil
	}
	return s.events
}

func (s *schedWatch) run(addr string, log zerolog.Logger, quit <-chan struct{}, wake func()) {
	post := func(ev schedEvent) bool {
		select {
		case s.events <- ev:
			wake()
			return true
		case <-quit:
			return false
		}
	}
	warned := false // watching failures are logged once
	for {
		w, err := transport.WatchConnection(addr)
		if err == nil {
			var quitting bool
			quitting, err = s.follow(w, quit, post)
			w.Close()
			if quitting {
				return
			}
		}
		if err == nil {
			continue // the connection was lost: watch the next one
		}
		if !warned {
			warned = true
			log.Warn().Err(err).Str("scheduler", addr).Msg("watching the scheduler connection failed; retrying")
		}
		select {
		case <-quit:
			return
		case <-time.After(schedWatchRetry):
		}
	}
}

// follow reports w's connection and its loss. It returns quitting when
// the agent is quitting, and an error when watching itself failed.
func (s *schedWatch) follow(w *transport.Watch, quit <-chan struct{}, post func(schedEvent) bool) (quitting bool, err error) {
	select {
	case <-quit:
		return true, nil
	case <-w.Connected():
		if !post(schedConnected) {
			return true, nil
		}
	case err := <-w.Lost():
		return false, err
	}
	select {
	case <-quit:
		return true, nil
	case err := <-w.Lost():
		if !errors.Is(err, transport.ErrConnectionLost) {
			return false, err
		}
		return !post(schedLost), nil
	}
}

// onSchedEvent handles a change of the scheduler connection.
func (a *agent) onSchedEvent(ev schedEvent, now time.Time) {
	switch ev {
	case schedLost:
		a.schedBack = false
		if !a.schedDown {
			a.schedDown = true
			a.log.Info().Int("tasks", len(a.tasks)).
				Msg("connection to the scheduler lost; starting no task until the scheduler answers again")
		}
	case schedConnected:
		if a.schedDown {
			a.schedBack = true
			// The heartbeat outstanding went to a connection that is gone.
			a.hbSent = time.Time{}
			a.sendHeartbeat(now)
		}
	}
}

// onEchoWhileDown decides whether an echo ends a loss of the scheduler
// connection: one from a new instance does; one from the same instance
// only once a connection is back, because an echo of the scheduler that
// just went away may still wait in the socket when the loss is reported.
func (a *agent) onEchoWhileDown(newInstance bool) {
	if !a.schedDown || !(newInstance || a.schedBack) {
		return
	}
	a.schedDown, a.schedBack = false, false
	a.log.Info().Hex("instance", a.instance).Int("tasks", len(a.tasks)).Msg("the scheduler answers again")
	a.dispatch()
}

// onInstance handles the instance id of an echo: a different one than the
// work came from means a restarted scheduler, and that work is dropped. It
// reports whether the id changed.
func (a *agent) onInstance(id []byte) bool {
	if len(id) == 0 || bytes.Equal(a.instance, id) { // the same, or a scheduler that does not say
		return false
	}
	if a.instance != nil {
		a.dropInstance(a.instance, id)
	}
	a.instance = bytes.Clone(id)
	return true
}

// dropInstance forgets every task of the previous scheduler instance old:
// queued ones are discarded, running and suspended ones stopped (their
// processors killed, as for a forced cancel). Nothing is sent for any of
// them: the new instance does not know them.
func (a *agent) dropInstance(old, cur []byte) {
	var queued, running, suspended int
	for _, t := range a.tasks {
		switch {
		case t.proc == nil || t.ahead:
			queued++
		case t.proc.suspended:
			suspended++
		default:
			running++
		}
	}
	for _, p := range a.procs {
		if p.task == nil && len(p.ahead) == 0 {
			continue // idle: current or spare, it serves the new instance
		}
		// Unbound first, so that killing it requeues or confirms nothing.
		p.task, p.ahead = nil, nil
		a.retire(p)
	}
	clear(a.tasks)
	a.queue = taskQueue{seq: a.queue.seq}
	a.deadline = time.Time{}
	ev := a.log.Warn()
	if queued+running+suspended == 0 {
		ev = a.log.Info()
	}
	ev.Hex("previous_instance", old).Hex("instance", cur).
		Int("queued", queued).Int("running", running).Int("suspended", suspended).
		Msgf("scheduler restarted: dropped %d queued, %d running and %d suspended tasks of its previous instance",
			queued, running, suspended)
	a.dispatch() // a processor for the new instance's tasks
}
