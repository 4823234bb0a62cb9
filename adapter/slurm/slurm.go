// Package slurm is the Slurm worker adapter (scaler_worker_adapter_slurm):
// it serves the adapter HTTP API (package adapter) and, for every
// start_worker_group, submits one Slurm batch job that runs "scaler
// cluster" with WorkersPerJob workers on the allocated node. The group id
// is "slurm-<job id>" and the worker ids are derived from the job id (see
// WorkerIDs), so the ids returned are the ones the workers use.
//
// shutdown_worker_group cancels the job (scancel: Slurm sends SIGTERM to
// the job's processes, the cluster stops its workers, which disconnect
// from the scheduler). A poll of squeue notices jobs that Slurm ended by
// itself (time limit, preemption, node failure) and frees their slots;
// pending jobs hold a slot too, so --max-jobs bounds what squeue shows and
// a job waiting in Slurm's queue is never submitted twice. Stopping the
// adapter cancels every job it submitted and waits (bounded) for squeue
// to stop listing them.
//
// Slurm is reached through its commands (sbatch, squeue, scancel) behind
// the Slurm interface, so the logic is tested with a fake and the commands
// against a real single-host Slurm (python/tests/slurm).
package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/adapter"
	"github.com/opengris/scaler/internal/identity"
)

// Slurm is what the adapter needs of Slurm.
type Slurm interface {
	// Submit runs sbatch with args and the script on its standard input
	// and returns the job id.
	Submit(ctx context.Context, args []string, script string) (string, error)
	// Cancel cancels the jobs (scancel: SIGTERM to every process of
	// the job, SIGKILL after Slurm's KillWait).
	Cancel(ctx context.Context, ids []string) error
	// Terminate sends SIGTERM to the batch script of running jobs only
	// (scancel --batch --signal=TERM); the job ends when the script exits.
	Terminate(ctx context.Context, ids []string) error
	// Queue lists the jobs named name that Slurm still has: id -> state.
	Queue(ctx context.Context, name string) (map[string]string, error)
}

// commandTimeout bounds one Slurm command: a controller that does not
// answer makes a start fail (500) rather than hang the webhook.
const commandTimeout = 30 * time.Second

// CLI runs Slurm's commands found on PATH; they read SLURM_CONF and the
// rest of the environment as usual.
type CLI struct{}

func run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctx.Err() != nil {
			msg = fmt.Sprintf("no answer within %s", commandTimeout)
		}
		return stdout.String(), fmt.Errorf("%s: %v: %s", name, err, msg)
	}
	return stdout.String(), nil
}

func (CLI) Submit(ctx context.Context, args []string, script string) (string, error) {
	out, err := run(ctx, script, "sbatch", args...)
	if err != nil {
		return "", err
	}
	return ParseSbatch(out)
}

func (CLI) Cancel(ctx context.Context, ids []string) error {
	_, err := run(ctx, "", "scancel", ids...)
	return err
}

func (CLI) Terminate(ctx context.Context, ids []string) error {
	_, err := run(ctx, "", "scancel", append([]string{"--batch", "--signal=TERM"}, ids...)...)
	return err
}

func (CLI) Queue(ctx context.Context, name string) (map[string]string, error) {
	out, err := run(ctx, "", "squeue", "--noheader", "--name="+name, "--format="+QueueFormat)
	if err != nil {
		return nil, err
	}
	return ParseQueue(out)
}

// Options configure an Adapter.
type Options struct {
	Spec     JobSpec       // JobName is the base name; the adapter adds its suffix
	MaxJobs  int           // -1: no limit
	Poll     time.Duration // squeue interval (default 5 s)
	StopWait time.Duration // how long Close waits for cancelled jobs to leave squeue (default 60 s)
	// StopGrace is how long a running job's cluster has after SIGTERM to
	// stop its workers before the job is cancelled outright (default 30 s).
	StopGrace time.Duration
	Slurm     Slurm // default CLI{}
}

// Adapter is the Slurm adapter's Backend.
type Adapter struct {
	opt  Options
	spec JobSpec
	log  zerolog.Logger

	mu     sync.Mutex
	t      *table
	closed bool

	stopPoll context.CancelFunc
	pollDone chan struct{}
}

// New makes an adapter and starts its squeue poll; Close stops both.
func New(opt Options, log zerolog.Logger) *Adapter {
	if opt.Poll <= 0 {
		opt.Poll = 5 * time.Second
	}
	if opt.StopWait <= 0 {
		opt.StopWait = time.Minute
	}
	if opt.StopGrace <= 0 {
		opt.StopGrace = 30 * time.Second
	}
	if opt.Slurm == nil {
		opt.Slurm = CLI{}
	}
	spec := opt.Spec
	// A suffix of this adapter's own, so that squeue --name lists its jobs
	// only (not those of another adapter with the same base name).
	spec.JobName = spec.JobName + "-" + identity.RandomHex(4)
	a := &Adapter{opt: opt, spec: spec, log: log, t: newTable(opt.MaxJobs), pollDone: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	a.stopPoll = cancel
	go a.pollLoop(ctx)
	return a
}

// JobName is the name of every job this adapter submits.
func (a *Adapter) JobName() string { return a.spec.JobName }

// StartGroup submits one job; the group is there as soon as Slurm has it,
// pending or not.
func (a *Adapter) StartGroup(ctx context.Context) (adapter.Group, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return adapter.Group{}, errors.New("the adapter is shutting down")
	}
	if err := a.t.reserve(); err != nil {
		a.mu.Unlock()
		return adapter.Group{}, err
	}
	a.mu.Unlock()

	nonce := identity.RandomHex(16)
	id, err := a.opt.Slurm.Submit(ctx, SbatchArgs(a.spec), Script(a.spec, nonce))
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.t.unreserve()
		return adapter.Group{}, fmt.Errorf("submitting the Slurm job: %v", err)
	}
	j := &job{id: id, group: GroupID(id), workers: WorkerIDs(id, nonce, a.spec.WorkersPerJob), submitted: time.Now()}
	a.t.added(j)
	if a.closed {
		// Close ran while sbatch did: it cannot know this job, so cancel it here.
		j.cancelled = true
		go a.cancel([]string{id})
	}
	a.log.Info().Str("group", j.group).Str("job", id).Int("workers", len(j.workers)).
		Int("jobs", len(a.t.live)).Msg("submitted Slurm job for a worker group")
	return adapter.Group{ID: j.group, WorkerIDs: append([]string(nil), j.workers...)}, nil
}

// ShutdownGroup cancels the group's job (if Slurm still has it) and
// forgets the group. The slot stays taken until squeue stops listing the
// job.
func (a *Adapter) ShutdownGroup(id string) error {
	a.mu.Lock()
	j, cancel, err := a.t.shutdown(id)
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if !cancel {
		a.log.Info().Str("group", id).Str("job", j.id).Msg("forgot worker group whose Slurm job had ended")
		return nil
	}
	ctx, stop := context.WithTimeout(context.Background(), commandTimeout)
	defer stop()
	how, err := a.stop(ctx, []*job{j})
	if err != nil {
		// scancel fails for a job that has just ended: then it is fine.
		if q, qerr := a.opt.Slurm.Queue(ctx, a.spec.JobName); qerr == nil {
			if _, listed := q[j.id]; !listed {
				a.log.Info().Str("group", id).Str("job", j.id).Msg("worker group's Slurm job had already ended")
				return nil
			}
		}
		a.mu.Lock()
		a.t.unshutdown(j)
		a.mu.Unlock()
		return fmt.Errorf("cancelling Slurm job %s: %v", j.id, err)
	}
	a.log.Info().Str("group", id).Str("job", j.id).Str("how", how).Msg("stopping Slurm job of the worker group")
	return nil
}

// stop stops jobs: the running ones by SIGTERM to their cluster (which
// stops its workers in order; the poll cancels them outright if they are
// still listed StopGrace later), the others by scancel. how says which.
func (a *Adapter) stop(ctx context.Context, jobs []*job) (how string, err error) {
	// The states the poll saw are up to a poll old. A job that started
	// since would get a plain scancel, and Slurm then signals every process
	// of it at once, a processor still starting included, so its worker
	// reports a failed start instead of stopping cleanly: ask squeue now.
	if q, qerr := a.opt.Slurm.Queue(ctx, a.spec.JobName); qerr == nil {
		a.mu.Lock()
		for _, j := range jobs {
			if state, listed := q[j.id]; listed {
				j.state = state
			}
		}
		a.mu.Unlock()
	}
	var term, cancel []string
	a.mu.Lock()
	for _, j := range jobs {
		j.cancelled = true
		if j.graceful() {
			term = append(term, j.id)
		} else {
			j.forced = true
			cancel = append(cancel, j.id)
		}
	}
	a.mu.Unlock()
	how = "scancel"
	if len(term) > 0 {
		how = "SIGTERM to its cluster (scancel --batch --signal=TERM)"
		if terr := a.opt.Slurm.Terminate(ctx, term); terr != nil {
			// Perhaps it is not running after all (squeue's state is
			// up to a poll old): cancel it outright.
			a.log.Debug().Strs("jobs", term).Err(terr).Msg("SIGTERM to the batch script failed; cancelling")
			cancel, how = append(cancel, term...), "scancel"
			term = nil
		}
	}
	now := time.Now()
	a.mu.Lock()
	for _, j := range jobs {
		for _, id := range term {
			if j.id == id {
				j.signalled = now
			}
		}
		if j.signalled.IsZero() {
			j.forced = true
		}
	}
	a.mu.Unlock()
	if len(cancel) > 0 {
		err = a.opt.Slurm.Cancel(ctx, cancel)
	}
	return how, err
}

// forceOverdue cancels outright the jobs whose cluster had StopGrace to
// stop after SIGTERM and that squeue still lists.
func (a *Adapter) forceOverdue() {
	a.mu.Lock()
	late := a.t.overdue(time.Now(), a.opt.StopGrace)
	a.mu.Unlock()
	if len(late) == 0 {
		return
	}
	ids := make([]string, len(late))
	for i, j := range late {
		ids[i] = j.id
	}
	a.log.Warn().Strs("jobs", ids).Dur("grace", a.opt.StopGrace).Msg("Slurm jobs still running after SIGTERM to their cluster; cancelling them outright")
	a.cancel(ids)
}

func (a *Adapter) cancel(ids []string) {
	ctx, stop := context.WithTimeout(context.Background(), commandTimeout)
	defer stop()
	if err := a.opt.Slurm.Cancel(ctx, ids); err != nil {
		a.log.Warn().Strs("jobs", ids).Err(err).Msg("scancel failed")
	}
}

func (a *Adapter) pollLoop(ctx context.Context) {
	defer close(a.pollDone)
	tick := time.NewTicker(a.opt.Poll)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := a.poll(ctx)
		a.forceOverdue()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			a.log.Warn().Err(err).Msg("squeue failed; jobs Slurm ends are noticed once it answers again")
			failing = true
		case err == nil && failing:
			a.log.Info().Msg("squeue answers again")
			failing = false
		}
	}
}

// poll applies one squeue listing and logs what changed.
func (a *Adapter) poll(ctx context.Context) error {
	asOf := time.Now()
	q, err := a.opt.Slurm.Queue(ctx, a.spec.JobName)
	if err != nil {
		return err
	}
	a.mu.Lock()
	changes := a.t.observe(q, asOf)
	n := len(a.t.live)
	a.mu.Unlock()
	for _, c := range changes {
		j := c.job
		switch {
		case c.to == "" && j.cancelled:
			a.log.Info().Str("group", j.group).Str("job", j.id).Int("jobs", n).Msg("cancelled Slurm job has left the queue; its slot is free")
		case c.to == "":
			a.log.Warn().Str("group", j.group).Str("job", j.id).Str("last_state", c.from).Int("jobs", n).
				Msg("Slurm ended the job by itself (time limit, preemption, node failure, or its workers exited); its slot is free (the group stays listed until shut down)")
		case c.to == "RUNNING":
			a.log.Info().Str("group", j.group).Str("job", j.id).Dur("after", time.Since(j.submitted).Round(time.Millisecond)).Msg("Slurm job running")
		default:
			a.log.Debug().Str("group", j.group).Str("job", j.id).Str("from", c.from).Str("to", c.to).Msg("Slurm job state")
		}
	}
	return nil
}

// Jobs lists the jobs holding a slot with their last state, for tests.
func (a *Adapter) Jobs() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{}
	for id, j := range a.t.live {
		out[id] = j.state
	}
	return out
}

// Close refuses new starts, stops every job the adapter submitted and
// still holds (as ShutdownGroup does) and waits up to StopWait for squeue
// to stop listing them.
func (a *Adapter) Close() {
	a.mu.Lock()
	a.closed = true
	var jobs []*job
	for _, id := range a.t.liveIDs() {
		if j := a.t.live[id]; !j.cancelled {
			jobs = append(jobs, j)
		}
	}
	left := len(a.t.live)
	a.mu.Unlock()
	a.stopPoll()
	<-a.pollDone
	if left == 0 {
		return
	}
	if len(jobs) > 0 {
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			ids[i] = j.id
		}
		a.log.Info().Strs("jobs", ids).Msg("stopping the adapter's Slurm jobs")
		ctx, stop := context.WithTimeout(context.Background(), commandTimeout)
		if _, err := a.stop(ctx, jobs); err != nil {
			a.log.Warn().Err(err).Msg("scancel failed")
		}
		stop()
	}
	deadline := time.Now().Add(a.opt.StopWait)
	for {
		ctx, stop := context.WithTimeout(context.Background(), commandTimeout)
		asOf := time.Now()
		q, err := a.opt.Slurm.Queue(ctx, a.spec.JobName)
		stop()
		if err == nil {
			a.mu.Lock()
			a.t.observe(q, asOf)
			left := a.t.liveIDs()
			a.mu.Unlock()
			if len(left) == 0 {
				a.log.Info().Msg("every Slurm job of the adapter has left the queue")
				return
			}
			if time.Now().After(deadline) {
				a.log.Warn().Strs("jobs", left).Dur("waited", a.opt.StopWait).Msg("Slurm jobs still listed after scancel; not waiting longer")
				return
			}
		} else if time.Now().After(deadline) {
			a.log.Warn().Err(err).Msg("squeue failed; cannot tell whether the cancelled jobs have ended")
			return
		}
		a.forceOverdue()
		time.Sleep(500 * time.Millisecond)
	}
}

// Run serves the adapter API until ctx is done, then cancels every job.
func Run(ctx context.Context, opt Options, host string, port int, ready func(string), log zerolog.Logger) error {
	a := New(opt, log)
	log.Info().Str("scheduler", opt.Spec.SchedulerAddress).Int("max_jobs", opt.MaxJobs).
		Int("workers_per_job", opt.Spec.WorkersPerJob).Int("cpus_per_job", opt.Spec.CPUs).
		Str("job_name", a.JobName()).Msg("Slurm worker adapter starting")
	serr := adapter.Serve(ctx, host, port, adapter.Handler(a, log), log, ready)
	a.Close()
	log.Info().Msg("Slurm worker adapter stopped")
	return serr
}
