package commands

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/storage"
)

func runObjectStorageServer(ctx context.Context, section config.Section, log zerolog.Logger) error {
	cfg := section.(*config.ObjectStorageServer)
	srv, err := storage.NewServer(storage.Config{Address: cfg.ObjectStorageAddress, MaxMemory: cfg.MaxMemoryBytes(), MaxMessageSize: cfg.MaxMessageSizeBytes()}, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
