package commands

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/server"
	"github.com/opengris/scaler/transport"
)

func runScheduler(ctx context.Context, cfg *config.Scheduler, log zerolog.Logger) error {
	tuneGCForMessageLoop()
	if err := transport.Init(cfg.IOThreads); err != nil {
		return err
	}
	return server.Run(ctx, cfg, log)
}
