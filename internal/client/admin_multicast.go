package client

import (
	"context"
	"net/http"

	"github.com/imprint-osd/imprint/internal/multicast"
)

// StartMulticast starts a multicast session for a content version.
func (a *Admin) StartMulticast(ctx context.Context, req multicast.StartRequest) (*multicast.Session, error) {
	var out multicast.Session
	if err := a.sendJSON(ctx, http.MethodPost, "/admin/v1/multicast", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MulticastSessions lists the server's sessions, newest first.
func (a *Admin) MulticastSessions(ctx context.Context) ([]multicast.Session, error) {
	var out []multicast.Session
	if err := a.get(ctx, "/admin/v1/multicast", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// StopMulticast cancels a session that has not ended.
func (a *Admin) StopMulticast(ctx context.Context, id string) error {
	return a.del(ctx, "/admin/v1/multicast/"+esc(id))
}
