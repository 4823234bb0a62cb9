package commands

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/adapter/native"
	"github.com/opengris/scaler/adapter/symphony"
	"github.com/opengris/scaler/config"
)

// runNativeAdapter serves the native adapter's webhook; the workers it
// starts are "scaler worker" child processes of this executable.
func runNativeAdapter(ctx context.Context, section config.Section, log zerolog.Logger) error {
	cfg := section.(*config.NativeWorkerAdapter)
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
func runSymphonyAdapter(ctx context.Context, section config.Section, log zerolog.Logger) error {
	cfg := section.(*config.SymphonyWorkerAdapter)
	python := pythonInterpreter(cfg.Python)
	if err := checkPython(python); err != nil {
		return err
	}
	if err := checkModule(python, "soamapi"); err != nil {
		return fmt.Errorf("the Symphony adapter needs IBM Spectrum Symphony's Python API: %v; install it into that interpreter from your Symphony installation (upstream says: pip install soamapi), or choose another with --python PATH or SCALER_PYTHON", err)
	}
	return symphony.Run(ctx, cfg, python, log)
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
