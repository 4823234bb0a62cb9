package worker

import (
	"context"
	"fmt"
	"strings"
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
	type slot struct {
		cfg     Config
		started time.Time
		backoff backoff
		restart *time.Timer
	}
	type ended struct {
		i     int
		cause StopCause
		err   error
	}
	slots := make([]*slot, len(workers))
	// At most one agent and one pending restart per slot: neither channel
	// ever blocks its sender.
	exits := make(chan ended, len(workers))
	restarts := make(chan int, len(workers))
	live, pending := 0, 0
	start := func(i int) {
		s := slots[i]
		s.cfg.setDefaults()
		s.started = time.Now()
		live++
		cfg := s.cfg
		go func() {
			cause, err := RunWithCause(ctx, cfg, log)
			exits <- ended{i, cause, err}
		}()
	}
	cancelRestarts := func() {
		for _, s := range slots {
			if s.restart != nil {
				s.restart.Stop()
				s.restart = nil
				pending--
			}
		}
	}
	for i, w := range workers {
		slots[i] = &slot{cfg: w}
		start(i)
	}
	if live > 0 {
		log.Info().Int("workers", live).Str("scheduler", workers[0].SchedulerAddress).
			Msgf("started %d workers in this process", live)
	}
	var failures []string
	stopping := false
	done := ctx.Done()
	for live > 0 || pending > 0 {
		select {
		case <-done:
			done = nil
			cancelRestarts()
			stopping = true
		case i := <-restarts:
			s := slots[i]
			if s.restart == nil {
				continue // cancelled after it fired
			}
			s.restart, pending = nil, pending-1
			start(i)
		case ex := <-exits:
			live--
			s := slots[ex.i]
			id, ran := s.cfg.WorkerID, time.Since(s.started)
			how := "stopped"
			if ex.err != nil {
				how = ex.err.Error()
			}
			act := exitActions[ex.cause.ExitStatus()]
			switch {
			case act == restartWorker && stopping:
				log.Info().Str("worker", id).Str("exit", how).Msg("worker ended; not restarted, stopping")
			case act == restartWorker:
				i := ex.i
				s.restart, pending = scheduleRestart(&s.cfg, &s.backoff, ran, log, id, "failed", how, func() { restarts <- i }), pending+1
			case act == endCluster:
				if !stopping {
					stopping = true
					cancelRestarts()
					log.Info().Str("worker", id).Str("exit", how).
						Msg("worker ended on the scheduler's account; no more restarts")
				}
			case act == failWorker:
				failures = append(failures, fmt.Sprintf("worker %s: %s", id, how))
				log.Error().Str("worker", id).Str("exit", how).Msgf("worker ended: %s; not restarted (a restart cannot help)", how)
			}
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("workers: %s", strings.Join(failures, "; "))
	}
	return nil
}
