package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// StopCause says why a worker stopped. A worker process reports it as its
// exit status (ExitStatus), from which the cluster decides whether to start
// the worker again (exitAction).
type StopCause uint8

const (
	// StopSignal: its owner stopped it (ctx done: SIGINT or SIGTERM).
	StopSignal StopCause = iota
	// StopFailed: it failed while running (the object storage connection
	// was lost, a socket failed); a new worker may well succeed.
	StopFailed
	// StopShutdown: the scheduler told its workers to shut down.
	StopShutdown
	// StopDeathTimeout: no contact with the scheduler for the death timeout.
	StopDeathTimeout
	// StopFatal: a failure that starting again cannot mend (the preload hook
	// failed, processors cannot start, the configuration is wrong).
	StopFatal
)

// Exit statuses of a worker process (the hidden "scaler worker" command).
// Only the cluster reads them. 2 is the commands package's usage status.
var exitStatus = [...]int{StopSignal: 0, StopFailed: 1, StopShutdown: 3, StopDeathTimeout: 4, StopFatal: 5}

// ExitStatus is the exit status of a worker process that stopped for c.
func (c StopCause) ExitStatus() int { return exitStatus[c] }

// exitMeaning names the statuses of exitStatus for logs.
var exitMeaning = map[int]string{
	1: "failed",
	2: "configuration error",
	3: "the scheduler asked workers to shut down",
	4: "death timeout",
	5: "cannot work: preload or processor start-up failed",
}

// describeWorkerExit is describeExit with the meaning of the status.
func describeWorkerExit(err error) string {
	how := describeExit(err)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 { // -1: killed by a signal
		if m, ok := exitMeaning[ee.ExitCode()]; ok {
			how += " (" + m + ")"
		}
	}
	return how
}

// action is what the cluster does when one of its workers ends.
type action uint8

const (
	restartWorker action = iota // it died: start a new one after the back-off
	keepEnded                   // it was stopped on purpose: leave it be
	endCluster                  // the cluster ends: no more restarts; it exits when its last worker has
	failWorker                  // a restart cannot help: no restart, the cluster will exit 1
)

// exitActions decides by exit status; anything else (killed by a signal,
// an unknown status) is a death and restarts the worker.
//
// Not restarted, on purpose:
//   - 0: someone stopped the worker with SIGINT or SIGTERM (the cluster
//     itself does that only when it stops; an operator who stops one worker
//     means it);
//   - 3, 4: the scheduler asked its workers to shut down, or the death
//     timeout expired (the scheduler is gone). Upstream's cluster ends when
//     its workers have exited for these reasons (reference/worker.md §5), so
//     the cluster stops restarting and exits 0 once the last one is gone;
//   - 2, 5: wrong configuration, failing preload, processors that cannot
//     start: every new worker would fail the same way.
var exitActions = map[int]action{
	0: keepEnded,
	1: restartWorker,
	2: failWorker,
	3: endCluster,
	4: endCluster,
	5: failWorker,
}

// exitAction decides what to do about a worker process that ended with
// the Wait error err.
func exitAction(err error) action {
	if err == nil {
		return exitActions[0]
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return restartWorker
	}
	if ee.ExitCode() < 0 { // killed by a signal
		return restartWorker
	}
	if a, ok := exitActions[ee.ExitCode()]; ok {
		return a
	}
	return restartWorker
}

// Restart back-off: a worker that dies is started again after
// backoffMin; each further death in a row doubles the delay, up to
// backoffMax. A worker that ran for backoffReset before it died counts as
// a first death again.
const (
	backoffMin   = 500 * time.Millisecond
	backoffMax   = 30 * time.Second
	backoffReset = time.Minute
)

// backoff is the restart delay of one worker slot.
type backoff struct{ next time.Duration }

// delay returns how long to wait before starting a worker that died after
// running for ran, and advances the back-off.
func (b *backoff) delay(ran time.Duration) time.Duration {
	if b.next == 0 || ran >= backoffReset {
		b.next = backoffMin
	}
	d := b.next
	b.next = min(2*b.next, backoffMax)
	return d
}

// ClusterOptions says how the cluster starts its workers.
type ClusterOptions struct {
	// Command is the argv of one worker process. It reads its Config as
	// JSON on stdin and runs it (the hidden "scaler worker" subcommand).
	Command []string
	// StopGrace is how long workers get after SIGINT before SIGKILL
	// (default: processor kill delay + 5s).
	StopGrace time.Duration
	// NoRestart: a worker that ends is not started again, whatever the
	// cause. The native adapter wants this: a dead worker frees its slot
	// and the scheduler asks for a new group if it needs one, and the
	// worker id the adapter returned must stay the id of its only worker.
	NoRestart bool
	// ProcessGroup starts every worker in a process group of its own and
	// sends the SIGKILL after StopGrace, and a sweep when the worker ended,
	// to the whole group, so its processors cannot outlive it even when
	// the agent itself was killed.
	ProcessGroup bool
	// Started, when set, is called (on RunCluster's goroutine) with the id
	// and pid of every worker process that started.
	Started func(workerID string, pid int)
	// Relay: the workers reach their scheduler through a relay in this
	// process (RunRelay, over ipc://) that carries all their messages over
	// one connection, instead of one connection each.
	Relay bool
}

type slotExit struct {
	i   int
	err error
}

// RunCluster starts one process per worker configuration and supervises
// them: a worker that dies is started again (exitActions, backoff), with a
// new worker id; when ctx is done it sends every worker SIGINT, cancels
// pending restarts and waits for them (SIGKILL after StopGrace). It
// returns once no worker runs or will be restarted, with an error if a
// worker failed in a way a restart cannot help.
func RunCluster(ctx context.Context, workers []Config, opt ClusterOptions, log zerolog.Logger) error {
	if len(opt.Command) == 0 {
		return errors.New("cluster: no worker command")
	}
	if opt.StopGrace <= 0 {
		opt.StopGrace = 8 * time.Second
	}
	if opt.Relay && len(workers) > 0 {
		return runRelayed(ctx, workers, opt, log)
	}
	sv := newSupervisor(workers, opt.NoRestart, log)
	// Each slot has at most one process, so exits never blocks its sender.
	exits := make(chan slotExit, len(workers))
	start := func(i int) error {
		s := sv.slots[i]
		s.cfg.setDefaults()
		spec, err := json.Marshal(s.cfg)
		if err != nil {
			return err
		}
		cmd := exec.Command(opt.Command[0], opt.Command[1:]...)
		cmd.Stdin = strings.NewReader(string(spec))
		cmd.Stdout = os.Stdout
		cmd.Stderr = os.Stderr
		if opt.ProcessGroup {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		}
		if err := startChild(cmd, syscall.SIGTERM); err != nil {
			return err
		}
		s.cmd, s.started = cmd, time.Now()
		sv.live++
		if opt.Started != nil {
			opt.Started(s.cfg.WorkerID, cmd.Process.Pid)
		}
		go func() { exits <- slotExit{i, cmd.Wait()} }()
		return nil
	}
	signalAll := func(sig syscall.Signal) {
		for _, s := range sv.slots {
			if s.cmd != nil {
				if opt.ProcessGroup && sig == syscall.SIGKILL {
					_ = syscall.Kill(-s.cmd.Process.Pid, sig)
				} else {
					_ = s.cmd.Process.Signal(sig)
				}
			}
		}
	}
	for i := range workers {
		if err := start(i); err != nil {
			sv.failures = append(sv.failures, fmt.Sprintf("starting worker %s: %v", sv.slots[i].cfg.WorkerID, err))
			sv.stop()
			signalAll(syscall.SIGINT)
			break
		}
	}
	if sv.live > 0 && !sv.stopping {
		log.Info().Int("workers", sv.live).Str("scheduler", workers[0].SchedulerAddress).
			Msgf("cluster started %d workers", sv.live)
	}
	done := ctx.Done()
	var killTimer <-chan time.Time
	for sv.live > 0 || sv.pending > 0 {
		select {
		case <-done:
			done = nil
			if sv.live > 0 {
				log.Info().Msg("cluster stopping its workers")
				signalAll(syscall.SIGINT)
			}
			sv.stop()
			killTimer = time.After(opt.StopGrace)
		case <-killTimer:
			log.Warn().Int("workers", sv.live).Msg("workers did not stop in time; killing them")
			signalAll(syscall.SIGKILL)
		case i := <-sv.restarts:
			if sv.restartDue(i) {
				if err := start(i); err != nil {
					sv.retryLater(i, err)
				}
			}
		case ex := <-exits:
			s := sv.slots[ex.i]
			if opt.ProcessGroup {
				// Whatever the agent left in its group (processors of an
				// agent killed with SIGKILL) goes with it. The group id
				// cannot have been reused yet: the kernel keeps a pid while
				// it names a live process group.
				_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			}
			s.cmd = nil
			sv.ended(ex.i, exitAction(ex.err), describeWorkerExit(ex.err), done == nil)
		}
	}
	log.Info().Msg("cluster stopped")
	return sv.err("cluster")
}

// runRelayed is RunCluster with ClusterOptions.Relay: a relay at an ipc://
// address in a private directory, the workers connected to it, and the
// cluster ended (with the relay's error) if the relay fails.
func runRelayed(ctx context.Context, workers []Config, opt ClusterOptions, log zerolog.Logger) error {
	dir, err := os.MkdirTemp("", "scaler-relay-")
	if err != nil {
		return fmt.Errorf("cluster: relay directory: %w", err)
	}
	defer os.RemoveAll(dir)
	local := "ipc://" + filepath.Join(dir, "relay.sock")
	if len(local)-len("ipc://") >= maxIPCPath {
		return fmt.Errorf("cluster: relay socket path %s is too long for a Unix socket (%d bytes at most); set TMPDIR to a shorter directory", local, maxIPCPath-1)
	}
	upstream := workers[0].SchedulerAddress
	relayed := make([]Config, len(workers))
	for i, w := range workers {
		w.UpstreamAddress, w.SchedulerAddress = w.SchedulerAddress, local
		relayed[i] = w
	}
	opt.Relay = false
	// The relay outlives the workers' stop, so that their last messages
	// (DisconnectRequest) reach the scheduler; it stops once RunCluster has.
	rctx, stopRelay := context.WithCancel(context.Background())
	defer stopRelay()
	cctx, stopCluster := context.WithCancel(ctx)
	defer stopCluster()
	started := make(chan struct{})
	relayDone := make(chan error, 1)
	go func() {
		err := RunRelay(rctx, local, upstream, func() { close(started) }, log)
		if err != nil {
			log.Error().Err(err).Msg("relay failed; the cluster stops")
		}
		stopCluster()
		relayDone <- err
	}()
	select {
	case <-started:
	case err := <-relayDone: // it runs until stopRelay, so only a failure ends it here
		return fmt.Errorf("cluster: %w", err)
	}
	err = RunCluster(cctx, relayed, opt, log)
	stopRelay()
	if rerr := <-relayDone; rerr != nil && err == nil {
		err = fmt.Errorf("cluster: %w", rerr)
	}
	return err
}

// maxIPCPath is the room for a path in a Unix socket address (sun_path).
const maxIPCPath = 108
