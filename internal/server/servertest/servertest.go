// Package servertest starts the real Imprint server in-process for other
// packages' tests: a fresh data directory, loopback listeners on free
// ports, and a shutdown checked at the end of the test.
package servertest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/server"
)

// CheapArgon2 makes passcode checks fast in tests; production uses
// auth.DefaultArgon2Params.
var CheapArgon2 = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Start runs a server until the test ends and returns it once every
// listener is bound. edit, when non-nil, adjusts the configuration (whose
// DataDir is a fresh temporary directory).
func Start(t testing.TB, edit func(*server.Config)) *server.Server {
	t.Helper()
	return StartDeps(t, edit, server.Deps{})
}

// StartDeps is Start with adapters of the test's choosing (a PostgreSQL
// store, say); what deps leaves nil is the embedded default.
func StartDeps(t testing.TB, edit func(*server.Config), deps server.Deps) *server.Server {
	t.Helper()
	if deps.Log == nil {
		deps.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen, cfg.BootListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.PasscodeArgon2 = CheapArgon2
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *server.Server, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- server.Run(ctx, cfg, deps, func(s *server.Server) { ready <- s })
	}()
	var srv *server.Server
	select {
	case srv = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("server did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("server: %v", err)
		}
	})
	return srv
}
