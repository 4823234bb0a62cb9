package commands

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
)

func runObjectStorageServer(ctx context.Context, section config.Section, log zerolog.Logger) error {
	_ = section.(*config.ObjectStorageServer)
	return errNotBuilt
}
