package commands

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/server"
)

func runScheduler(ctx context.Context, section config.Section, log zerolog.Logger) error {
	cfg := section.(*config.Scheduler)
	tuneGCForMessageLoop()
	return server.Run(ctx, cfg, log)
}
