package commands

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/adapter/native"
	"github.com/opengris/scaler/adapter/slurm"
	"github.com/opengris/scaler/adapter/symphony"
	"github.com/opengris/scaler/config"
)

// runNativeAdapter serves the native adapter's webhook; the workers it
// starts are "scaler worker" child processes of this executable.
func runNativeAdapter(ctx context.Context, cfg *config.NativeWorkerAdapter, log zerolog.Logger) error {
	python := pythonInterpreter(cfg.Python)
	if err := checkPython(python); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the scaler executable to start workers: %w", err)
	}
	return native.Run(ctx, cfg, native.Options{Command: []string{exe, workerSubcommand}, Python: python}, log)
}

// runSymphonyAdapter checks that the interpreter has Symphony's Python API
// before anything starts, so a missing soamapi is one clear line.
func runSymphonyAdapter(ctx context.Context, cfg *config.SymphonyWorkerAdapter, log zerolog.Logger) error {
	python := pythonInterpreter(cfg.Python)
	if err := checkPython(python); err != nil {
		return err
	}
	if err := checkModule(python, "soamapi"); err != nil {
		return fmt.Errorf("the Symphony adapter needs IBM Spectrum Symphony's Python API: %v; install it into that interpreter from your Symphony installation (upstream says: pip install soamapi), or choose another with --python PATH or SCALER_PYTHON", err)
	}
	return symphony.Run(ctx, cfg, python, log)
}

// runSlurmAdapter serves the Slurm adapter's webhook. The binary and the
// interpreter are paths on the nodes; the adapter cannot check them there,
// so it only checks that Slurm's commands are here.
func runSlurmAdapter(ctx context.Context, cfg *config.SlurmWorkerAdapter, log zerolog.Logger) error {
	for _, c := range []string{"sbatch", "squeue", "scancel"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("the Slurm adapter needs Slurm's %s on PATH (Debian: apt-get install slurm-client; SLURM_CONF names the cluster's slurm.conf): %v", c, err)
		}
	}
	binary := cfg.ScalerBinary
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("cannot find the scaler executable for the nodes; give --scaler-binary: %w", err)
		}
		binary = exe
	}
	workers := cfg.WorkersPerJob
	if workers == 0 {
		workers = cfg.CPUsPerJob
	}
	spec := slurm.JobSpec{
		JobName: cfg.JobName, Partition: cfg.Partition, Account: cfg.Account, TimeLimit: cfg.TimeLimit,
		CPUs: cfg.CPUsPerJob, Memory: cfg.MemoryPerJob, Output: cfg.JobOutput,
		ExtraArgs: strings.Fields(cfg.SbatchArguments), WorkersPerJob: workers,
		ScalerBinary: binary, Python: pythonInterpreter(cfg.Python),
		SchedulerAddress: cfg.SchedulerAddress, StorageAddress: cfg.ObjectStorageAddress,
		Capabilities: cfg.PerWorkerCapabilities, QueueSize: cfg.WorkerTaskQueueSize,
		HeartbeatSeconds: cfg.HeartbeatInterval, TaskTimeout: cfg.TaskTimeoutSeconds,
		DeathTimeout: cfg.DeathTimeoutSeconds, Preload: cfg.Preload, LoggingLevel: cfg.LoggingLevel,
	}
	opt := slurm.Options{Spec: spec, MaxJobs: cfg.MaxJobs, Poll: time.Duration(cfg.PollSeconds) * time.Second,
		StopGrace: time.Duration(cfg.StopGraceSeconds) * time.Second}
	return slurm.Run(ctx, opt, cfg.AdapterWebHost, cfg.AdapterWebPort, nil, log)
}

// checkModule makes sure python can import module.
func checkModule(python, module string) error {
	ctx, cancel := context.WithTimeout(context.Background(), pythonCheckTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", "import "+module).CombinedOutput()
	if ctx.Err() != nil {
		return nil // too slow to tell; the worker reports for itself
	}
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("%s cannot import %s (%s)", python, module, lines[len(lines)-1])
	}
	return nil
}
