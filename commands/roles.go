package commands

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
)

// runFunc starts a role with its validated configuration and blocks until
// ctx is cancelled (SIGINT/SIGTERM) or the role ends by itself.
type runFunc func(ctx context.Context, cfg config.Section, log zerolog.Logger) error

// role is one of the programs the binary can be.
type role struct {
	sub         string // subcommand: scaler <sub> ...
	usage       string // one-line description
	newSection  func() config.Section
	run         runFunc
	notBuiltYet string // non-empty: the role parses its configuration, then says so and exits 1
}

// Program is the name the role is known by on the command line and in help.
func (r *role) Program() string { return "scaler_" + r.sub }

var roles = []*role{
	{
		sub:        "scheduler",
		usage:      "run the scheduler that clients and workers connect to",
		newSection: func() config.Section { return config.DefaultScheduler() },
		run:        runScheduler,
	},
	{
		sub:        "cluster",
		usage:      "run a standalone compute cluster of N workers",
		newSection: func() config.Section { return config.DefaultCluster() },
		run:        runCluster,
	},
	{
		sub:        "object_storage_server",
		usage:      "run an object storage server",
		newSection: func() config.Section { return config.DefaultObjectStorageServer() },
		run:        runObjectStorageServer,
	},
	{
		sub:        "ui",
		usage:      "web ui for scaler monitoring",
		newSection: func() config.Section { return config.DefaultWebUI() },
		run:        runWebUI,
	},
	{
		sub:        "top",
		usage:      "monitor the scheduler like top",
		newSection: func() config.Section { return config.DefaultTop() },
		run:        runTopMonitor,
	},
	{
		sub:        "worker_adapter_native",
		usage:      "HTTP webhook that starts and stops workers on this machine on demand",
		newSection: func() config.Section { return config.DefaultNativeWorkerAdapter() },
		run:        runNativeAdapter,
	},
	{
		sub:        "worker_adapter_symphony",
		usage:      "worker adapter for IBM Spectrum Symphony (needs its Python API, soamapi)",
		newSection: func() config.Section { return config.DefaultSymphonyWorkerAdapter() },
		run:        runSymphonyAdapter,
	},
}

// roleByProgram finds a role by program name (scaler_scheduler) or
// subcommand (scheduler).
func roleByName(name string) *role {
	for _, r := range roles {
		if name == r.sub || name == r.Program() {
			return r
		}
	}
	return nil
}
