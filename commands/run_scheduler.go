package commands

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/server"
	"github.com/opengris/scaler/transport"
)

func runScheduler(ctx context.Context, section config.Section, log zerolog.Logger) error {
	cfg := section.(*config.Scheduler)
	tuneGCForMessageLoop()
	if err := transport.Init(cfg.IOThreads); err != nil {
		return err
	}
	return server.Run(ctx, cfg, log)
}
