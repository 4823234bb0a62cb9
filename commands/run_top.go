package commands

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/monitor/top"
)

func runTopMonitor(ctx context.Context, cfg *config.Top, log zerolog.Logger) error {
	return top.Run(ctx, top.Options{
		Address: cfg.MonitorAddress,
		Timeout: time.Duration(cfg.Timeout) * time.Second,
		Log:     log,
	})
}
