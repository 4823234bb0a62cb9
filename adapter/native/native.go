// Package native is the native worker adapter (scaler_worker_adapter_native):
// it serves the adapter HTTP API (package adapter) and, for every
// start_worker_group, starts one worker agent of this binary on this
// machine, supervised by worker.RunCluster; shutdown_worker_group stops it.
//
// Where upstream 1.12.5 differs (reference/worker.md §6.1, §9 item 13):
// max_workers counts workers whose process is alive, so a worker that died
// frees its slot; shutting a group down does not block the adapter (the
// worker gets SIGINT, then SIGKILL after a grace period, in the
// background); and stopping the adapter stops every worker it started.
package native

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/adapter"
	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/internal/identity"
	"github.com/opengris/scaler/worker"
)

// MaxGroups bounds the group table: live groups plus the records of groups
// whose worker died and that the scheduler has not shut down yet. At the
// bound a start is refused with 429 whatever max_workers says.
const MaxGroups = 1024

// startTimeout bounds how long a start request waits for the worker
// process to be running (an exec; long only on a machine in trouble).
const startTimeout = 30 * time.Second

// Options are what the commands package resolves for the adapter.
type Options struct {
	// Command is the argv of one worker process (the hidden "scaler
	// worker" subcommand), as for worker.RunCluster.
	Command []string
	// Python is the resolved interpreter of the processors.
	Python string
	// StopGrace is how long a worker gets after SIGINT before SIGKILL
	// (default 8 s).
	StopGrace time.Duration
	// Ready, when set, is called with the HTTP address once it listens.
	Ready func(addr string)
}

// group is one started worker group: one worker process.
type group struct {
	id       string
	workerID string
	pid      int
	started  time.Time
	cancel   context.CancelFunc
	done     chan struct{} // closed when its worker process has ended
	alive    bool          // its process runs (guarded by Adapter.mu)
	exitErr  error         // why it ended (RunCluster's error; nil for a clean stop)
	stopping bool          // shut down on request
}

// Spec says what groups an Adapter starts (the native adapter's from its
// section; the Symphony adapter's one Symphony worker).
type Spec struct {
	Template     worker.Config // the started workers' configuration, without ids
	MaxWorkers   int           // -1: no limit
	GroupPrefix  string        // group ids are GroupPrefix + 32 hex digits
	LimitMessage string        // the 429 text at MaxWorkers (default: upstream's native text)
}

// Adapter is the native adapter's Backend.
type Adapter struct {
	spec Spec
	opt  Options
	log  zerolog.Logger

	ctx    context.Context // the adapter's life; every group's context derives from it
	wg     sync.WaitGroup  // one per group goroutine
	mu     sync.Mutex
	groups map[string]*group
	live   int // groups whose worker process runs (stopping ones included)
	closed bool
}

// New makes an adapter whose workers live at most as long as ctx.
func New(ctx context.Context, cfg *config.NativeWorkerAdapter, opt Options, log zerolog.Logger) (*Adapter, error) {
	template, err := worker.FromSettings(cfg.WorkerSettings(), opt.Python)
	if err != nil {
		return nil, err
	}
	return NewWith(ctx, Spec{Template: template, MaxWorkers: cfg.MaxWorkers, GroupPrefix: "native-"}, opt, log)
}

// NewWith makes an adapter that starts the groups spec describes.
func NewWith(ctx context.Context, spec Spec, opt Options, log zerolog.Logger) (*Adapter, error) {
	if len(opt.Command) == 0 {
		return nil, errors.New("adapter: no worker command")
	}
	if opt.StopGrace <= 0 {
		opt.StopGrace = 8 * time.Second
	}
	if spec.LimitMessage == "" {
		spec.LimitMessage = fmt.Sprintf("Maximum number of workers (%d) reached.", spec.MaxWorkers)
	}
	return &Adapter{spec: spec, opt: opt, log: log, ctx: ctx, groups: map[string]*group{}}, nil
}

// StartGroup starts one worker and returns its group once the process runs.
func (a *Adapter) StartGroup(ctx context.Context) (adapter.Group, error) {
	a.mu.Lock()
	switch {
	case a.closed:
		a.mu.Unlock()
		return adapter.Group{}, errors.New("the adapter is shutting down")
	case a.spec.MaxWorkers != -1 && a.live >= a.spec.MaxWorkers:
		a.mu.Unlock()
		return adapter.Group{}, &adapter.LimitError{Msg: a.spec.LimitMessage}
	case len(a.groups) >= MaxGroups:
		a.mu.Unlock()
		return adapter.Group{}, &adapter.LimitError{Msg: fmt.Sprintf("Maximum number of worker groups (%d) reached; shut some down first.", MaxGroups)}
	}
	// Upstream's shapes: group "native-<hex>", worker name "<hex>".
	name := identity.RandomHex(16)
	g := &group{id: a.spec.GroupPrefix + identity.RandomHex(16), done: make(chan struct{}), alive: true, started: time.Now()}
	cfg := a.spec.Template
	cfg.Name = name
	cfg.WorkerID = worker.NewWorkerID(name)
	g.workerID = cfg.WorkerID
	gctx, cancel := context.WithCancel(a.ctx)
	g.cancel = cancel
	a.groups[g.id] = g
	a.live++ // the slot is taken before the process exists, so concurrent starts cannot overshoot
	a.wg.Add(1)
	a.mu.Unlock()

	pids := make(chan int, 1)
	copt := worker.ClusterOptions{
		Command: a.opt.Command, StopGrace: a.opt.StopGrace, NoRestart: true, ProcessGroup: true,
		Started: func(_ string, pid int) {
			a.mu.Lock()
			g.pid = pid
			a.mu.Unlock()
			pids <- pid
		},
	}
	// RunCluster's own INFO lines (cluster started/stopping/stopped) would
	// repeat ours for every group; its warnings and errors stay.
	wlog := a.log.With().Str("group", g.id).Logger()
	if a.log.GetLevel() >= zerolog.InfoLevel {
		wlog = wlog.Level(zerolog.WarnLevel)
	}
	go func() {
		defer a.wg.Done()
		err := worker.RunCluster(gctx, []worker.Config{cfg}, copt, wlog)
		cancel()
		a.ended(g, err)
	}()
	wait := time.NewTimer(startTimeout)
	defer wait.Stop()
	select {
	case pid := <-pids:
		if ctx.Err() != nil {
			// The request ended while the process started (the webhook
			// call timed out): nobody would learn the group's id, so it
			// would hold a slot forever.
			a.abandon(g, "the start request ended as the worker started")
			return adapter.Group{}, fmt.Errorf("start request ended: %w", ctx.Err())
		}
		a.log.Info().Str("group", g.id).Str("worker", g.workerID).Int("pid", pid).
			Int("workers", a.Live()).Msg("started worker group")
		return adapter.Group{ID: g.id, WorkerIDs: []string{g.workerID}}, nil
	case <-g.done:
		a.forget(g.id)
		return adapter.Group{}, fmt.Errorf("starting the worker: %v", g.exitErr)
	case <-ctx.Done():
		a.abandon(g, "the start request ended before the worker started")
		return adapter.Group{}, fmt.Errorf("start request ended: %w", ctx.Err())
	case <-wait.C:
		// Leave it to its goroutine; the group stops and forgets itself.
		a.forget(g.id)
		cancel()
		return adapter.Group{}, fmt.Errorf("the worker process did not start within %s", startTimeout)
	}
}

// abandon stops the worker of a group whose start nobody will hear of;
// like a shutdown, it frees the slot once the process is gone.
func (a *Adapter) abandon(g *group, why string) {
	a.mu.Lock()
	delete(a.groups, g.id)
	g.stopping = true
	a.mu.Unlock()
	g.cancel()
	a.log.Warn().Str("group", g.id).Str("worker", g.workerID).Msg("stopping the worker of an abandoned start: " + why)
}

// ended records that g's worker process is gone.
func (a *Adapter) ended(g *group, err error) {
	a.mu.Lock()
	g.alive = false
	g.exitErr = err
	a.live--
	stopping := g.stopping || a.closed
	never := g.pid == 0
	a.mu.Unlock()
	close(g.done)
	ran := time.Since(g.started).Round(time.Millisecond)
	switch {
	case never:
		// StartGroup reports the failure.
	case stopping:
		a.log.Info().Str("group", g.id).Str("worker", g.workerID).Dur("ran", ran).Msg("worker group stopped")
	default:
		a.log.Warn().Str("group", g.id).Str("worker", g.workerID).Dur("ran", ran).Err(err).
			Msg("worker of the group ended by itself; its slot is free (the group stays listed until shut down)")
	}
}

func (a *Adapter) forget(id string) {
	a.mu.Lock()
	delete(a.groups, id)
	a.mu.Unlock()
}

// ShutdownGroup starts stopping the group's worker and forgets the group;
// it does not wait for the worker to exit.
func (a *Adapter) ShutdownGroup(id string) error {
	a.mu.Lock()
	g, ok := a.groups[id]
	if !ok {
		a.mu.Unlock()
		return &adapter.UnknownGroupError{ID: id}
	}
	delete(a.groups, id)
	g.stopping = true
	alive := g.alive
	a.mu.Unlock()
	g.cancel()
	if alive {
		a.log.Info().Str("group", id).Str("worker", g.workerID).Msg("shutting worker group down")
	} else {
		a.log.Info().Str("group", id).Str("worker", g.workerID).Msg("forgot worker group whose worker had ended")
	}
	return nil
}

// Live is the number of worker processes running.
func (a *Adapter) Live() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.live
}

// GroupInfo describes a group for tests and logs.
type GroupInfo struct {
	ID, WorkerID string
	PID          int
	Alive        bool
}

// Groups lists the groups, by id.
func (a *Adapter) Groups() []GroupInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]GroupInfo, 0, len(a.groups))
	for _, g := range a.groups {
		out = append(out, GroupInfo{ID: g.id, WorkerID: g.workerID, PID: g.pid, Alive: g.alive})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close refuses new starts and waits until every worker started has ended
// (their contexts end with the adapter's: each gets SIGINT, then SIGKILL
// after StopGrace).
func (a *Adapter) Close() {
	a.mu.Lock()
	a.closed = true
	gs := make([]*group, 0, len(a.groups))
	for _, g := range a.groups {
		gs = append(gs, g)
	}
	a.mu.Unlock()
	for _, g := range gs {
		g.cancel()
	}
	a.wg.Wait()
}

// Run serves the adapter API until ctx is done, then stops every worker.
func Run(ctx context.Context, cfg *config.NativeWorkerAdapter, opt Options, log zerolog.Logger) error {
	wctx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	a, err := New(wctx, cfg, opt, log)
	if err != nil {
		return err
	}
	log.Info().Str("scheduler", cfg.SchedulerAddress).Int("max_workers", cfg.MaxWorkers).
		Int("worker_task_queue_size", cfg.WorkerTaskQueueSize).Msg("native worker adapter starting")
	serr := adapter.Serve(ctx, cfg.AdapterWebHost, cfg.AdapterWebPort, adapter.Handler(a, log), log, opt.Ready)
	if n := a.Live(); n > 0 {
		log.Info().Int("workers", n).Msg("stopping the adapter's workers")
	}
	stopWorkers()
	a.Close()
	log.Info().Msg("native worker adapter stopped")
	return serr
}
