package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// PasscodeChange is the server's answer to a passcode set, generate,
// rotate or clear.
type PasscodeChange = wire.PasscodeChange

// PasscodeStatus says whether a passcode is set; it never holds the value.
type PasscodeStatus = wire.PasscodeStatus

// SetPasscode makes code the passcode; the server refuses weak ones with
// a KindInvalid error carrying its policy message.
func (a *Admin) SetPasscode(ctx context.Context, code string) (*PasscodeChange, error) {
	var out PasscodeChange
	if err := a.sendJSON(ctx, http.MethodPut, "/admin/v1/passcode", wire.PasscodeRequest{Passcode: code}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GeneratePasscode makes a random passcode current and returns it in Code.
func (a *Admin) GeneratePasscode(ctx context.Context) (*PasscodeChange, error) {
	var out PasscodeChange
	if err := a.call(ctx, request{method: http.MethodPost, path: "/admin/v1/passcode/generate"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotatePasscode replaces the passcode by code (a generated one when code
// is empty); the old one keeps working for grace, and grace 0 revokes the
// sessions it minted.
func (a *Admin) RotatePasscode(ctx context.Context, code string, grace time.Duration) (*PasscodeChange, error) {
	if grace < 0 {
		return nil, deploy.Errorf(deploy.KindInvalid, "grace: %s is negative", grace)
	}
	var out PasscodeChange
	req := wire.PasscodeRequest{Passcode: code, Grace: grace.String()}
	if err := a.sendJSON(ctx, http.MethodPost, "/admin/v1/passcode/rotate", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PasscodeStatus reports whether a passcode is set, its generation and age.
func (a *Admin) PasscodeStatus(ctx context.Context) (*PasscodeStatus, error) {
	var out PasscodeStatus
	if err := a.get(ctx, "/admin/v1/passcode", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClearPasscode turns passcode authentication off.
func (a *Admin) ClearPasscode(ctx context.Context) (*PasscodeChange, error) {
	var out PasscodeChange
	if err := a.call(ctx, request{method: http.MethodDelete, path: "/admin/v1/passcode"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Sessions lists live sessions, or every stored one when all is set.
func (a *Admin) Sessions(ctx context.Context, all bool) ([]*deploy.Session, error) {
	r := request{method: http.MethodGet, path: "/admin/v1/sessions"}
	if all {
		r.query = url.Values{"all": {"1"}}
	}
	var out []*deploy.Session
	if err := a.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeSession ends one live session.
func (a *Admin) RevokeSession(ctx context.Context, id string) error {
	return a.del(ctx, "/admin/v1/sessions/"+esc(id))
}

// RevokeDeviceSessions ends every live session of one device, or with
// device "" every live session, and returns how many.
func (a *Admin) RevokeDeviceSessions(ctx context.Context, device string) (int, error) {
	q := url.Values{"all": {"1"}}
	if device != "" {
		q = url.Values{"device": {device}}
	}
	var out wire.SessionsRevoked
	if err := a.call(ctx, request{method: http.MethodDelete, path: "/admin/v1/sessions", query: q}, &out); err != nil {
		return 0, err
	}
	return out.SessionsRevoked, nil
}

// EntraConfig is the Entra ID tenant and app registration.
type EntraConfig = wire.EntraConfig

// Security is the effective client-authentication setup.
type Security = wire.Security

// Security returns the effective authentication modes.
func (a *Admin) Security(ctx context.Context) (*Security, error) {
	var out Security
	if err := a.get(ctx, "/admin/v1/security", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetPasscodeAlongside allows or refuses passcode logins while Entra ID or
// certificates are on.
func (a *Admin) SetPasscodeAlongside(ctx context.Context, on bool) (*Security, error) {
	return a.setSwitch(ctx, "/admin/v1/security/passcode-alongside", on, nil)
}

// SetSecureBoot turns Secure Boot mode (the signed network-boot chain for
// UEFI machines) on or off.
func (a *Admin) SetSecureBoot(ctx context.Context, on bool) (*Security, error) {
	return a.setSwitch(ctx, "/admin/v1/security/secure-boot", on, nil)
}

// SetAnonymous turns anonymous authentication on or off; turned on with
// networks (CIDRs), only clients from those may use it.
func (a *Admin) SetAnonymous(ctx context.Context, on bool, from ...string) (*Security, error) {
	return a.setSwitch(ctx, "/admin/v1/security/anonymous", on, from)
}

// setSwitch PUTs {"on":on,"from":[…]} to an on/off security setting.
func (a *Admin) setSwitch(ctx context.Context, path string, on bool, from []string) (*Security, error) {
	var out Security
	in := wire.SecuritySwitch{On: on, From: from}
	if err := a.sendJSON(ctx, http.MethodPut, path, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetEntra configures Entra ID authentication.
func (a *Admin) SetEntra(ctx context.Context, cfg EntraConfig) (*Security, error) {
	var out Security
	if err := a.sendJSON(ctx, http.MethodPut, "/admin/v1/security/entra", cfg, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClearEntra turns Entra ID authentication off.
func (a *Admin) ClearEntra(ctx context.Context) (*Security, error) {
	var out Security
	if err := a.call(ctx, request{method: http.MethodDelete, path: "/admin/v1/security/entra"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditEvents returns audit entries with a seq above after, oldest first;
// limit 0 means the server's default.
func (a *Admin) AuditEvents(ctx context.Context, after int64, limit int) ([]*deploy.AuditEvent, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []*deploy.AuditEvent
	if err := a.call(ctx, request{method: http.MethodGet, path: "/admin/v1/audit", query: q}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// VerifyAudit checks the whole hash chain and returns the number of
// entries verified; a broken chain is a KindConflict error naming the seq.
func (a *Admin) VerifyAudit(ctx context.Context) (int, error) {
	var out wire.AuditVerify
	if err := a.get(ctx, "/admin/v1/audit/verify", &out); err != nil {
		return 0, err
	}
	if !out.OK {
		return out.Verified, deploy.Errorf(deploy.KindConflict, "audit log verification failed")
	}
	return out.Verified, nil
}

// RunFilter selects runs; empty fields match everything.
type RunFilter struct {
	DeviceID       string
	TaskSequenceID string
	State          deploy.RunState
}

// Runs lists runs, newest first (at most 200).
func (a *Admin) Runs(ctx context.Context, f RunFilter) ([]*deploy.Run, error) {
	q := url.Values{}
	for k, v := range map[string]string{"device": f.DeviceID, "ts": f.TaskSequenceID, "state": string(f.State)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out []*deploy.Run
	if err := a.call(ctx, request{method: http.MethodGet, path: "/admin/v1/runs", query: q}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Run returns one run with its step results.
func (a *Admin) Run(ctx context.Context, id string) (*deploy.Run, error) {
	var out deploy.Run
	if err := a.get(ctx, "/admin/v1/runs/"+esc(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelRun ends a pending or running run as canceled; its agent is
// refused from then on.
func (a *Admin) CancelRun(ctx context.Context, id string) (*deploy.Run, error) {
	var out deploy.Run
	if err := a.call(ctx, request{method: http.MethodPost, path: "/admin/v1/runs/" + esc(id) + "/cancel"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RunEvents returns the run's events with a seq above after, in order.
func (a *Admin) RunEvents(ctx context.Context, id string, after int64) ([]*deploy.RunEvent, error) {
	r := request{method: http.MethodGet, path: "/admin/v1/runs/" + esc(id) + "/events"}
	if after > 0 {
		r.query = url.Values{"after": {strconv.FormatInt(after, 10)}}
	}
	var out []*deploy.RunEvent
	if err := a.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// WaitRunEvents is RunEvents as a long poll: with no event after after
// yet, the server answers when the run changes (on any replica) or wait
// (at most a minute) has passed, with what is there then, possibly
// nothing.
func (a *Admin) WaitRunEvents(ctx context.Context, id string, after int64, wait time.Duration) ([]*deploy.RunEvent, error) {
	r := request{method: http.MethodGet, path: "/admin/v1/runs/" + esc(id) + "/events",
		query: url.Values{"after": {strconv.FormatInt(after, 10)}, "wait": {strconv.Itoa(int(wait / time.Second))}}}
	var out []*deploy.RunEvent
	if err := a.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RunLogs lists the names of the run's log bundles.
func (a *Admin) RunLogs(ctx context.Context, id string) ([]string, error) {
	var out []string
	if err := a.get(ctx, "/admin/v1/runs/"+esc(id)+"/logs", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DownloadRunLog copies the log bundle name of run id to w.
func (a *Admin) DownloadRunLog(ctx context.Context, id, name string, w io.Writer) (int64, error) {
	if name == "" {
		return 0, deploy.Errorf(deploy.KindInvalid, "log bundle name is empty")
	}
	r := request{method: http.MethodGet, path: "/admin/v1/runs/" + esc(id) + "/logs", query: url.Values{"name": {name}}}
	resp, err := a.send(ctx, r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download log bundle %s: %w", name, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("download log bundle %s: got %d of %d bytes", name, n, resp.ContentLength)
	}
	return n, nil
}

// ServerInfo is GET /admin/v1/info.
type ServerInfo = wire.ServerInfo

// Info returns the running server's public API URL, boot URL and CA
// fingerprint.
func (a *Admin) Info(ctx context.Context) (*ServerInfo, error) {
	var out ServerInfo
	if err := a.get(ctx, "/admin/v1/info", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
