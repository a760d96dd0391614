package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

// This file is the only one of the package that names the embedded
// adapters (a test checks it): New runs on whatever Deps it is given.

// Open starts a server on the embedded adapters: the SQLite database
// DATA/imprint.db and the content directory DATA/content.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	return OpenWith(ctx, cfg, Deps{Log: log})
}

// OpenWith is New with a nil deps.Store or deps.Blobs replaced by the
// embedded one. The server owns the adapters given from the call on and
// closes them, also when OpenWith fails.
func OpenWith(ctx context.Context, cfg Config, deps Deps) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		closeDeps(deps)
		return nil, err
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	handed := false // to newServer, which closes deps when it fails
	defer func() {
		if err != nil && !handed {
			closeDeps(deps)
		}
	}()
	dbPath := filepath.Join(cfg.DataDir, "imprint.db")
	if deps.Store != nil {
		dbPath = "" // another store: no SQLite file to create
	}
	if n, err := prepareDataDir(cfg.DataDir, dbPath, os.Geteuid()); err != nil {
		return nil, err
	} else if n > 0 {
		deps.Log.Warn("data directory was readable by other users: removed their access", "dir", cfg.DataDir, "entries", n)
	}
	if deps.Store == nil {
		if deps.Store, err = sqlite.Open(ctx, dbPath); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if deps.Blobs == nil {
		local, err := content.Open(filepath.Join(cfg.DataDir, "content"))
		if err != nil {
			return nil, fmt.Errorf("open content store: %w", err)
		}
		deps.Blobs = local
		if local.Cleaned > 0 {
			deps.Log.Info("removed temporary files of interrupted uploads", "count", local.Cleaned)
		}
	}
	handed = true
	return newServer(ctx, cfg, deps, true)
}
