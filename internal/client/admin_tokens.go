package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/imprint-osd/imprint/internal/wire"
)

// AdminToken describes an admin token; the token itself is only in
// NewAdminToken, once.
type AdminToken = wire.AdminToken

// NewAdminToken is a created token with its secret, shown once.
type NewAdminToken = wire.NewAdminToken

// CreateAdminToken mints an admin token for remote administration, valid
// for expires (0: until revoked). The server mints tokens only over its
// Unix socket.
func (a *Admin) CreateAdminToken(ctx context.Context, name string, expires time.Duration) (*NewAdminToken, error) {
	body := wire.AdminTokenRequest{Name: name}
	if expires > 0 {
		body.Expires = expires.String()
	}
	var out NewAdminToken
	if err := a.sendJSON(ctx, http.MethodPost, "/admin/v1/tokens", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AdminTokens lists every admin token, live or not, oldest first.
func (a *Admin) AdminTokens(ctx context.Context) ([]AdminToken, error) {
	var out []AdminToken
	if err := a.call(ctx, request{method: http.MethodGet, path: "/admin/v1/tokens"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeAdminToken revokes the live token with id or name ref.
func (a *Admin) RevokeAdminToken(ctx context.Context, ref string) (*AdminToken, error) {
	var out AdminToken
	if err := a.call(ctx, request{method: http.MethodDelete, path: "/admin/v1/tokens/" + url.PathEscape(ref)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
