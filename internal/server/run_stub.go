package server

import "context"

// Run starts the server on deps (see OpenWith: a nil Store or Blobs is the
// embedded one) and blocks until ctx is done, then shuts down gracefully.
// ready, when non-nil, is called once every listener is bound.
func Run(ctx context.Context, cfg Config, deps Deps, ready func(*Server)) error {
	s, err := OpenWith(ctx, cfg, deps)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(s)
	}
	return s.Serve(ctx)
}
