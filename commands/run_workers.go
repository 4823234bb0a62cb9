package commands

// The roles that start workers (the cluster and the adapters) and the
// interpreter checks they share.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/adapter/native"
	"github.com/opengris/scaler/adapter/slurm"
	"github.com/opengris/scaler/adapter/symphony"
	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/worker"
)

// runCluster starts the cluster's workers, each as a "scaler worker" child
// process, and supervises them until ctx is done.
func runCluster(ctx context.Context, cfg *config.Cluster, log zerolog.Logger) error {
	python := pythonInterpreter(cfg.Python)
	workers, err := worker.FromCluster(cfg, python)
	if err != nil {
		return err
	}
	if cfg.NumOfWorkers > 0 {
		if err := checkPython(python); err != nil {
			return err // logged and printed once by start
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the scaler executable to start workers: %w", err)
	}
	return worker.RunCluster(ctx, workers, worker.ClusterOptions{Command: []string{exe, workerSubcommand}, Relay: cfg.Relay}, log)
}

// pythonInterpreter resolves the processors' interpreter: the python option,
// else $SCALER_PYTHON, else the python next to this executable (pip installs
// both into one environment's bin/), else python3.
func pythonInterpreter(configured string) string {
	if configured != "" {
		return configured
	}
	if env := os.Getenv("SCALER_PYTHON"); env != "" {
		return env
	}
	if exe, err := os.Executable(); err == nil {
		sibling := filepath.Join(filepath.Dir(exe), "python")
		if st, err := os.Stat(sibling); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return sibling
		}
	}
	return "python3"
}

// pythonCheckTimeout bounds the start-up check; on a loaded machine an
// interpreter may be slow to start, and a check that times out is skipped
// (the processors then report for themselves).
const pythonCheckTimeout = 30 * time.Second

// checkPython makes sure the interpreter exists and finds the scaler package
// before any worker starts: otherwise every processor exits at once and
// clients wait for workers that never come. It looks the package up without
// importing it, which costs one interpreter start.
func checkPython(python string) error { return checkPythonFor(python, "processors") }

// checkPythonFor is checkPython for what runs on the interpreter (in the
// error: "<what> cannot start").
func checkPythonFor(python, what string) error {
	hint := "choose the interpreter with --python PATH or SCALER_PYTHON=PATH (one where `pip install ./python` was run)"
	path, err := exec.LookPath(python)
	if err != nil {
		return fmt.Errorf("the Python interpreter %q for processors cannot be run: %v; %s", python, err, hint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pythonCheckTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-c",
		"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('scaler') else 3)").CombinedOutput()
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			return fmt.Errorf("the Python interpreter %s (%s) has no scaler package, so %s cannot start; %s", python, path, what, hint)
		}
		return fmt.Errorf("the Python interpreter %s (%s) failed: %v %s; %s", python, path, err, strings.TrimSpace(string(out)), hint)
	}
	return nil
}

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
	if err := checkPythonFor(python, "the Symphony worker"); err != nil {
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
		Relay: cfg.Relay,
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
