package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// User is a web-console account (never its password or hash).
type User = deploy.User

// AddUser creates a console account. Accounts are managed only over the
// server's Unix socket.
func (a *Admin) AddUser(ctx context.Context, name, role, password string) (*User, error) {
	var out User
	body := wire.UserRequest{Name: name, Role: deploy.Role(role), Password: password}
	if err := a.sendJSON(ctx, http.MethodPost, "/admin/v1/users", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Users lists the console accounts by name.
func (a *Admin) Users(ctx context.Context) ([]User, error) {
	var out []User
	if err := a.call(ctx, request{method: http.MethodGet, path: "/admin/v1/users"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetUserPassword replaces an account's password and ends its console
// sessions.
func (a *Admin) SetUserPassword(ctx context.Context, name, password string) (*User, error) {
	var out User
	if err := a.sendJSON(ctx, http.MethodPut, "/admin/v1/users/"+url.PathEscape(name)+"/password", wire.PasswordRequest{Password: password}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveUser deletes an account and ends its console sessions.
func (a *Admin) RemoveUser(ctx context.Context, name string) error {
	return a.call(ctx, request{method: http.MethodDelete, path: "/admin/v1/users/" + url.PathEscape(name)}, nil)
}
