package commands

import (
	"context"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/worker"
)

// runCluster starts the cluster's workers, each as a "scaler worker" child
// process, and supervises them until ctx is done.
func runCluster(ctx context.Context, section config.Section, log zerolog.Logger) error {
	cfg := section.(*config.Cluster)
	workers, err := worker.FromCluster(cfg, pythonInterpreter(cfg.Python))
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the scaler executable to start workers: %w", err)
	}
	if cfg.EventLoop != "builtin" {
		log.Info().Str("event_loop", cfg.EventLoop).Msg("event loop option accepted; Go has a single runtime")
	}
	return worker.RunCluster(ctx, workers, worker.ClusterOptions{Command: []string{exe, workerSubcommand}}, log)
}

// pythonInterpreter resolves the processors' interpreter: the python option,
// else $SCALER_PYTHON, else python3.
func pythonInterpreter(configured string) string {
	if configured != "" {
		return configured
	}
	if env := os.Getenv("SCALER_PYTHON"); env != "" {
		return env
	}
	return "python3"
}
