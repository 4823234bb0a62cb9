package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// ClusterOptions says how the cluster starts its workers.
type ClusterOptions struct {
	// Command is the argv of one worker process. It reads its Config as
	// JSON on stdin and runs it (the hidden "scaler worker" subcommand).
	Command []string
	// StopGrace is how long workers get after SIGINT before SIGKILL
	// (default: processor kill delay + 5s).
	StopGrace time.Duration
}

// RunCluster starts one process per worker configuration and supervises
// them: when ctx is done it sends every worker SIGINT and waits for them;
// workers that exit are not restarted; it returns once every worker has
// exited, with an error if any of them failed.
func RunCluster(ctx context.Context, workers []Config, opt ClusterOptions, log zerolog.Logger) error {
	if len(opt.Command) == 0 {
		return errors.New("cluster: no worker command")
	}
	if opt.StopGrace <= 0 {
		opt.StopGrace = 8 * time.Second
	}
	type exit struct {
		i   int
		err error
	}
	exits := make(chan exit, len(workers))
	cmds := make([]*exec.Cmd, 0, len(workers))
	live := 0
	var failures []string
	stop := func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGINT)
		}
	}
	for i, w := range workers {
		w.setDefaults()
		spec, err := json.Marshal(w)
		if err != nil {
			return err
		}
		cmd := exec.Command(opt.Command[0], opt.Command[1:]...)
		cmd.Stdin = strings.NewReader(string(spec))
		cmd.Stdout = os.Stdout
		cmd.Stderr = os.Stderr
		if err := startChild(cmd, syscall.SIGTERM); err != nil {
			stop()
			failures = append(failures, fmt.Sprintf("starting worker %s: %v", w.WorkerID, err))
			break
		}
		cmds = append(cmds, cmd)
		live++
		go func(i int, cmd *exec.Cmd) { exits <- exit{i, cmd.Wait()} }(i, cmd)
	}
	if live > 0 && len(failures) == 0 {
		log.Info().Int("workers", live).Str("scheduler", workers[0].SchedulerAddress).
			Msgf("cluster started %d workers", live)
	}
	stopping := len(failures) > 0
	done := ctx.Done()
	var killTimer <-chan time.Time
	for live > 0 {
		select {
		case <-done:
			done = nil
			if !stopping {
				stopping = true
				log.Info().Msg("cluster stopping its workers")
				stop()
			}
			killTimer = time.After(opt.StopGrace)
		case <-killTimer:
			log.Warn().Int("workers", live).Msg("workers did not stop in time; killing them")
			for _, c := range cmds {
				_ = c.Process.Signal(syscall.SIGKILL)
			}
		case ex := <-exits:
			live--
			id := workers[ex.i].WorkerID
			if ex.err != nil {
				how := describeExit(ex.err)
				failures = append(failures, fmt.Sprintf("worker %s: %s", id, how))
				log.Error().Str("worker", id).Str("exit", how).Msgf("worker exited: %s", how)
			} else {
				log.Info().Str("worker", id).Msg("worker exited")
			}
		}
	}
	log.Info().Msg("cluster stopped")
	if len(failures) > 0 {
		return fmt.Errorf("cluster: %s", strings.Join(failures, "; "))
	}
	return nil
}
