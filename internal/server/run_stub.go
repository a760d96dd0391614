package server

import (
	"context"
	"log/slog"
)

// Run starts the server and blocks until ctx is done, then shuts down
// gracefully. ready, when non-nil, is called once every listener is bound.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready func(*Server)) error {
	s, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(s)
	}
	return s.Serve(ctx)
}
