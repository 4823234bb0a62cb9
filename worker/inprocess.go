package worker

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// RunInProcess runs one agent per configuration in this process instead of
// one worker process each: every agent is a goroutine whose loop holds an OS
// thread of its own (agent.run), and its processors are children of this
// process. The combo runs its workers so, next to the scheduler, connected
// over inproc:// — no I/O thread of zmq between an agent and the scheduler
// loop (docs/performance.md).
//
// Supervision is RunCluster's: an agent that ends is started again, with a
// new worker id and the same back-off, when its stop cause maps to a status
// that exitActions restarts; it is not when its owner stopped it, the
// scheduler told it to shut down (after which no agent is restarted), or a
// restart cannot help. RunInProcess returns when ctx is done (each agent
// stops on ctx itself, killing its processors within its kill delay) and
// every agent has returned, or when no agent runs or will be restarted; with
// an error if an agent failed in a way a restart cannot help.
func RunInProcess(ctx context.Context, workers []Config, log zerolog.Logger) error {
	type ended struct {
		i     int
		cause StopCause
		err   error
	}
	sv := newSupervisor(workers, false, log)
	// At most one agent per slot: exits never blocks its sender.
	exits := make(chan ended, len(workers))
	start := func(i int) {
		s := sv.slots[i]
		s.cfg.setDefaults()
		s.cfg.inProcess = true
		s.started = time.Now()
		sv.live++
		cfg := s.cfg
		go func() {
			cause, err := RunWithCause(ctx, cfg, log)
			exits <- ended{i, cause, err}
		}()
	}
	for i := range workers {
		start(i)
	}
	if sv.live > 0 {
		log.Info().Int("workers", sv.live).Str("scheduler", workers[0].SchedulerAddress).
			Msgf("started %d workers in this process", sv.live)
	}
	done := ctx.Done()
	for sv.live > 0 || sv.pending > 0 {
		select {
		case <-done:
			done = nil
			sv.stop()
		case i := <-sv.restarts:
			if sv.restartDue(i) {
				start(i)
			}
		case ex := <-exits:
			how := "stopped"
			if ex.err != nil {
				how = ex.err.Error()
			}
			// Once the agents are stopping, for whatever reason, a death
			// among them is no failure of the combo's: the scheduler next
			// to them is ending too (its object storage may already be
			// gone), which a cluster process cannot say of its scheduler.
			sv.ended(ex.i, exitActions[ex.cause.ExitStatus()], how, done == nil || sv.stopping)
		}
	}
	return sv.err("workers")
}
