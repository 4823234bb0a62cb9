package commands

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
	return worker.RunCluster(ctx, workers, worker.ClusterOptions{Command: []string{exe, workerSubcommand}}, log)
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
func checkPython(python string) error {
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
			return fmt.Errorf("the Python interpreter %s (%s) has no scaler package, so processors cannot start; %s", python, path, hint)
		}
		return fmt.Errorf("the Python interpreter %s (%s) failed: %v %s; %s", python, path, err, strings.TrimSpace(string(out)), hint)
	}
	return nil
}
