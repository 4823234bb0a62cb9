package commands

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/storage"
)

func runObjectStorageServer(ctx context.Context, section config.Section, log zerolog.Logger) error {
	cfg := section.(*config.ObjectStorageServer)
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
