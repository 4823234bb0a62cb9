package commands

import (
	"context"
	"time"

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
	// Run has closed its sockets when it returns: let libzmq write out
	// what they hold (the answer to an accepted shutdown) before the exit.
	defer transport.Term(2 * time.Second)
	return server.Run(ctx, cfg, log)
}
