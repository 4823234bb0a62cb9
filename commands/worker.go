package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/transport"
	"github.com/opengris/scaler/worker"
)

// workerSubcommand is the hidden subcommand that runs one worker process of
// a cluster. It reads the worker's configuration as JSON on stdin.
const workerSubcommand = "worker"

func workerCommand(status *int, stdin io.Reader, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:            workerSubcommand,
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(*cli.Context) error {
			*status = runWorkerProcess(stdin, stderr)
			return nil
		},
	}
}

// runWorkerProcess: load config (stdin) -> logger -> worker.RunWithCause.
func runWorkerProcess(stdin io.Reader, stderr io.Writer) int {
	const prog = "scaler worker"
	var cfg worker.Config
	if err := json.NewDecoder(stdin).Decode(&cfg); err != nil {
		fmt.Fprintf(stderr, "%s: error: reading the worker configuration from stdin: %v\n", prog, err)
		return exitUsage
	}
	paths := cfg.LoggingPaths
	if len(paths) == 0 {
		paths = []string{"/dev/stdout"}
	}
	log, closer, err := logging.Open("worker", paths, cfg.LoggingLevel)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
		return exitUsage
	}
	defer closer.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tuneGCForMessageLoop()
	if err := transport.Init(max(cfg.IOThreads, 1)); err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
		return worker.StopFailed.ExitStatus()
	}
	// The exit status tells the cluster why the worker stopped, and so
	// whether to start it again (worker.StopCause).
	cause, err := worker.RunWithCause(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
	}
	return cause.ExitStatus()
}
