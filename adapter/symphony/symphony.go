// Package symphony is the IBM Spectrum Symphony worker adapter
// (scaler_worker_adapter_symphony): the adapter HTTP API (package adapter),
// where start_worker_group starts one Symphony worker. That worker is a
// Python process (scaler.worker_adapter.symphony.worker) that registers with
// the scheduler like any worker and runs every task it gets as a Symphony
// task through Symphony's Python API, soamapi; --base-concurrency tasks at
// once, more when a task of higher priority (a nested task) arrives.
//
// As in 1.12.5 there is one Symphony worker at a time (a second start is a
// 429); unlike 1.12.5 a new one may start once it is gone, and the command
// line works (upstream's -h clashed with --help).
package symphony

import (
	"context"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/adapter"
	"github.com/opengris/scaler/adapter/native"
	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/worker"
)

// WorkerModule is the Python module that runs the Symphony worker.
const WorkerModule = "scaler.worker_adapter.symphony.worker"

// Run serves the adapter API until ctx is done, then stops the worker.
// python must be an interpreter that imports scaler and soamapi (the
// commands package checks that first).
func Run(ctx context.Context, cfg *config.SymphonyWorkerAdapter, python string, log zerolog.Logger) error {
	template, err := worker.FromSettings(cfg.WorkerSettings(), python)
	if err != nil {
		return err
	}
	spec := native.Spec{
		Template:     template,
		MaxWorkers:   1,
		GroupPrefix:  "symphony-",
		LimitMessage: "Symphony worker already started",
	}
	command := []string{python, "-m", WorkerModule, "--service-name", cfg.ServiceName,
		"--base-concurrency", strconv.Itoa(cfg.BaseConcurrency)}
	wctx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	a, err := native.NewWith(wctx, spec, native.Options{Command: command, Python: python}, log)
	if err != nil {
		return err
	}
	log.Info().Str("scheduler", cfg.SchedulerAddress).Str("service", cfg.ServiceName).
		Int("base_concurrency", cfg.BaseConcurrency).Msg("Symphony worker adapter starting")
	serr := adapter.Serve(ctx, cfg.ServerHTTPHost, cfg.ServerHTTPPort, adapter.Handler(a, log), log, nil)
	stopWorkers()
	a.Close()
	log.Info().Msg("Symphony worker adapter stopped")
	return serr
}
