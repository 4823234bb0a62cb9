package commands

import (
	"context"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/adapter/native"
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
