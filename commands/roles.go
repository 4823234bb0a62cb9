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
	sub        string // subcommand: scaler <sub> ...
	usage      string // one-line description
	newSection func() config.Section
	run        runFunc
}

// Program is the name the role is known by on the command line and in help.
func (r *role) Program() string { return "scaler_" + r.sub }

// roleOf builds a role from its section's defaults and a run function
// that takes that section typed, so no runner repeats the type assertion.
func roleOf[S config.Section](sub, usage string, defaults func() S, run func(context.Context, S, zerolog.Logger) error) *role {
	return &role{
		sub:        sub,
		usage:      usage,
		newSection: func() config.Section { return defaults() },
		run: func(ctx context.Context, cfg config.Section, log zerolog.Logger) error {
			return run(ctx, cfg.(S), log)
		},
	}
}

var roles = []*role{
	roleOf("scheduler", "run the scheduler that clients and workers connect to",
		config.DefaultScheduler, runScheduler),
	roleOf("cluster", "run a standalone compute cluster of N workers",
		config.DefaultCluster, runCluster),
	roleOf("object_storage_server", "run an object storage server",
		config.DefaultObjectStorageServer, runObjectStorageServer),
	roleOf("ui", "web ui for scaler monitoring",
		config.DefaultWebUI, runWebUI),
	roleOf("top", "monitor the scheduler like top",
		config.DefaultTop, runTopMonitor),
	roleOf("worker_adapter_native", "HTTP webhook that starts and stops workers on this machine on demand",
		config.DefaultNativeWorkerAdapter, runNativeAdapter),
	roleOf("worker_adapter_symphony", "worker adapter for IBM Spectrum Symphony (needs its Python API, soamapi)",
		config.DefaultSymphonyWorkerAdapter, runSymphonyAdapter),
	roleOf("worker_adapter_slurm", "HTTP webhook that asks Slurm for workers on demand: one batch job per worker group",
		config.DefaultSlurmWorkerAdapter, runSlurmAdapter),
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
