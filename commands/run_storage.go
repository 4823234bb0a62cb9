package commands

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/storage"
	"github.com/opengris/scaler/transport"
)

func runObjectStorageServer(ctx context.Context, cfg *config.ObjectStorageServer, log zerolog.Logger) error {
	// Upstream's storage server has no io_threads option: one io thread.
	if err := transport.Init(1); err != nil {
		return err
	}
	srv, err := storage.NewServer(storage.Config{
		Address:        cfg.ObjectStorageAddress,
		MaxMemory:      cfg.MaxMemoryBytes(),
		MaxMessageSize: cfg.MaxMessageSizeBytes(),
		WaitTimeout:    time.Duration(cfg.WaitTimeoutSeconds) * time.Second,
	}, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
