package worker

import (
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// The two supervisors, RunCluster (a process per worker) and RunInProcess
// (a goroutine per agent), differ in how they start and stop a worker and
// share everything else here: the slots, the restart timers, and what to
// do about a worker that ended (exitVerdict, supervisor.ended).

// slot is one of the supervisor's workers: its configuration and, while it
// runs, when it started (and for RunCluster its process). A restarted
// worker takes the same slot with a new id, and names the slot's first
// id in its heartbeats (Config.Slot).
type slot struct {
	cfg     Config
	cmd     *exec.Cmd // RunCluster's process; nil while not running
	started time.Time
	backoff backoff
	restart *time.Timer // pending restart, nil if none
}

// verdict is what a supervisor does about one worker that ended.
type verdict uint8

const (
	noteExit      verdict = iota // log it; nothing more to do
	restartIt                    // start a new worker in the slot after its back-off
	leaveDead                    // it died, and restarts are off (ClusterOptions.NoRestart)
	beginEnd                     // the scheduler ended it: no more restarts, end with the last worker
	recordLoss                   // it died while the supervisor ends for another reason
	recordFailure                // a restart cannot help: the supervisor will return an error
)

// exitVerdict decides what to do about a worker that ended with act
// (exitActions), given whether the supervisor is already stopping, whether
// that stop is its owner's (ctx done) and whether restarts are off.
func exitVerdict(act action, stopping, ownStop, noRestart bool) verdict {
	switch act {
	case restartWorker:
		switch {
		case stopping && ownStop:
			return noteExit
		case stopping:
			return recordLoss
		case noRestart:
			return leaveDead
		}
		return restartIt
	case endCluster:
		if stopping {
			return noteExit
		}
		return beginEnd
	case failWorker:
		return recordFailure
	}
	return noteExit
}

// supervisor holds the state both supervisors' loops share. It is used
// from the loop's goroutine only; the timers it starts send on restarts.
type supervisor struct {
	log       zerolog.Logger
	slots     []*slot
	restarts  chan int // a slot whose back-off is over; never blocks (one timer per slot)
	live      int      // workers running
	pending   int      // restarts waiting for their timer
	stopping  bool     // no more restarts: the supervisor is on its way out
	noRestart bool
	failures  []string
}

func newSupervisor(workers []Config, noRestart bool, log zerolog.Logger) *supervisor {
	sv := &supervisor{log: log, slots: make([]*slot, len(workers)), restarts: make(chan int, len(workers)), noRestart: noRestart}
	for i, w := range workers {
		sv.slots[i] = &slot{cfg: w}
	}
	return sv
}

// stop makes the supervisor stop restarting: pending restarts are
// cancelled.
func (sv *supervisor) stop() {
	sv.stopping = true
	for _, s := range sv.slots {
		if s.restart != nil {
			s.restart.Stop()
			s.restart = nil
			sv.pending--
		}
	}
}

// restartDue takes the restart of slot i off the pending ones; false if it
// was cancelled after its timer fired.
func (sv *supervisor) restartDue(i int) bool {
	s := sv.slots[i]
	if s.restart == nil {
		return false
	}
	s.restart, sv.pending = nil, sv.pending-1
	return true
}

// retryLater schedules another start of slot i, whose start failed with err.
func (sv *supervisor) retryLater(i int, err error) {
	s := sv.slots[i]
	d := s.backoff.delay(0)
	sv.log.Error().Err(err).Str("worker", s.cfg.WorkerID).Dur("delay", d).
		Msgf("cannot start worker %s: %v; trying again in %s", s.cfg.WorkerID, err, d)
	s.restart, sv.pending = time.AfterFunc(d, func() { sv.restarts <- i }), sv.pending+1
}

// ended acts on the end of slot i's worker: act is its exit action, how
// says how it ended in the log, ownStop whether the supervisor's owner
// has stopped it.
func (sv *supervisor) ended(i int, act action, how string, ownStop bool) {
	sv.live--
	s := sv.slots[i]
	id, ran := s.cfg.WorkerID, time.Since(s.started).Round(time.Millisecond)
	log := sv.log
	switch exitVerdict(act, sv.stopping, ownStop, sv.noRestart) {
	case restartIt:
		d := s.backoff.delay(ran)
		if s.cfg.Slot == "" {
			s.cfg.Slot = id // the id an adapter may have listed
		}
		s.cfg.WorkerID = NewWorkerID(s.cfg.Name) // ids are unique per worker (a dead one's connection may linger)
		log.Warn().Str("worker", id).Str("exit", how).Dur("ran", ran).Dur("delay", d).Str("new_worker", s.cfg.WorkerID).
			Msgf("worker %s died (%s) after %s; restarting it in %s as %s", id, how, ran, d, s.cfg.WorkerID)
		s.restart, sv.pending = time.AfterFunc(d, func() { sv.restarts <- i }), sv.pending+1
	case leaveDead:
		log.Warn().Str("worker", id).Str("exit", how).Dur("ran", ran).
			Msgf("worker %s died (%s) after %s; not restarted", id, how, ran)
	case beginEnd:
		sv.stop()
		log.Info().Str("worker", id).Str("exit", how).
			Msg("worker ended on the scheduler's account; no more restarts, the rest end with the last worker")
	case recordLoss:
		sv.failures = append(sv.failures, fmt.Sprintf("worker %s: %s", id, how))
		log.Error().Str("worker", id).Str("exit", how).Msgf("worker exited: %s; not restarted, the workers are ending", how)
	case recordFailure:
		sv.failures = append(sv.failures, fmt.Sprintf("worker %s: %s", id, how))
		log.Error().Str("worker", id).Str("exit", how).Msgf("worker exited: %s; not restarted (a restart cannot help)", how)
	default:
		log.Info().Str("worker", id).Str("exit", how).Msg("worker exited")
	}
}

// err is the supervisor's result: the failures of its workers, if any,
// under prefix.
func (sv *supervisor) err(prefix string) error {
	if len(sv.failures) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", prefix, strings.Join(sv.failures, "; "))
}
