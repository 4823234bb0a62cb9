package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/server"
	"github.com/opengris/scaler/transport"
	"github.com/opengris/scaler/worker"
)

// comboSubcommand is the hidden subcommand behind Python's
// SchedulerClusterCombo: a scheduler and a cluster's workers in one process,
//
//	scaler combo SCHEDULER-OPTIONS... -- CLUSTER-OPTIONS...
//
// each half read exactly as "scaler scheduler" and "scaler cluster" read
// theirs. The workers reach the scheduler over inproc://, which takes no
// zmq I/O thread on either side: four thread wake-ups fewer per task than
// workers in processes of their own (docs/performance.md). The cluster's
// scheduler address is replaced by that endpoint; everything else of it
// applies as it would to a cluster process (worker.RunInProcess supervises
// the agents as RunCluster does processes).
const comboSubcommand = "combo"

// comboSeparator ends the scheduler's options and starts the cluster's.
const comboSeparator = "--"

func comboCommand(status *int, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:            comboSubcommand,
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			*status = runCombo(c.Args().Slice(), stdout, stderr)
			return nil
		},
	}
}

func runCombo(args []string, stdout, stderr io.Writer) int {
	const prog = "scaler combo"
	sep := slices.Index(args, comboSeparator)
	if sep < 0 {
		fmt.Fprintf(stderr, "%s: error: want SCHEDULER-OPTIONS %s CLUSTER-OPTIONS\n", prog, comboSeparator)
		return exitUsage
	}
	sc, status := parseRole(roleByName("scheduler"), args[:sep], stdout, stderr)
	if sc == nil {
		return status
	}
	cc, status := parseRole(roleByName("cluster"), args[sep+1:], stdout, stderr)
	if cc == nil {
		return status
	}
	sched, cluster := sc.(*config.Scheduler), cc.(*config.Cluster)
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
		return code
	}
	log, closer, err := logging.Open("scheduler", sched.LoggingPaths, sched.LoggingLevel)
	if err != nil {
		return fail(exitUsage, err)
	}
	defer closer.Close()
	wlog, wcloser, err := logging.Open("cluster", cluster.LoggingPaths, cluster.LoggingLevel)
	if err != nil {
		return fail(exitUsage, err)
	}
	defer wcloser.Close()
	for _, n := range notApplied(sched) {
		log.Warn().Str(n.key, n.value).Msg(n.why)
	}
	python := pythonInterpreter(cluster.Python)
	workers, err := worker.FromCluster(cluster, python)
	if err != nil {
		return fail(exitUsage, err)
	}
	if len(workers) > 0 {
		if err := checkPython(python); err != nil {
			wlog.Error().Err(err).Msg("cannot start workers")
			return fail(exitFailure, err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tuneGCForMessageLoop()
	if err := transport.Init(sched.IOThreads); err != nil {
		return fail(exitFailure, err)
	}
	s, err := server.New(sched, log)
	if err != nil {
		log.Error().Err(err).Msg("stopped with an error")
		return fail(exitFailure, err)
	}
	local := fmt.Sprintf("inproc://scaler-combo-%d", os.Getpid())
	if err := s.ListenAlso(local); err != nil {
		return fail(exitFailure, err)
	}
	for i := range workers {
		workers[i].SchedulerAddress = local
	}
	// The workers stop with the scheduler: when a signal ends both, or when
	// the scheduler ends by itself (a client's shutdown, which also tells
	// them so; this catches a worker that missed it).
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	workersDone := make(chan error, 1)
	go func() { workersDone <- worker.RunInProcess(wctx, workers, wlog) }()
	serr := s.Run(ctx)
	stopWorkers()
	werr := <-workersDone
	// Every socket is closed now: let libzmq write out what they hold (the
	// answer to an accepted shutdown) before the exit.
	transport.Term(2 * time.Second)
	status = exitOK
	if werr != nil {
		wlog.Error().Err(werr).Msg("workers stopped with an error")
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, werr)
		status = exitFailure
	}
	if serr != nil {
		log.Error().Err(serr).Msg("stopped with an error")
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, serr)
		status = exitFailure
	}
	return status
}
