package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// Remote administration: the admin API that the Unix socket serves is also
// served on the HTTPS port under /admin/v1/, to callers that present an
// admin token. Tokens are minted, listed and revoked only over the socket,
// so whoever holds one cannot make more or hide their tracks by revoking
// the others.

// actorKey holds who is administering: "admin-socket" (the default) or
// "admin-token:NAME".
const actorKey ctxKey = sessionKey + 1

// actor names the administrator of a request for the audit log.
func actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey).(string); ok {
		return a
	}
	return "admin-socket"
}

// requireAdminToken lets a request through to next only with a live admin
// token. Failures are audited and count against the source in the same
// throttle as passcode attempts.
func (s *Server) requireAdminToken(next http.Handler) http.Handler {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		src := s.clientIP(r)
		att, wait := s.throttle.Admit(src, "") // 256-bit tokens: parallel requests are fine
		if att == nil {
			return s.refuse(w, "admin.token", src, wait)
		}
		defer att.Abandon()
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(tok) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imprint-admin"`)
			return deploy.Errorf(deploy.KindUnauthorized, "an admin token is required (Authorization: Bearer …); create one with `imprint token create` on the server")
		}
		t, err := s.adminTokens.Authenticate(ctx, strings.TrimSpace(tok))
		if err != nil {
			if deploy.ErrorKind(err) == deploy.KindUnauthorized {
				att.Fail()
				s.record(ctx, &deploy.AuditEvent{Action: "admin.token.rejected", Outcome: auth.OutcomeFailure, Source: src,
					Details: map[string]string{"method": r.Method, "path": r.URL.Path}})
				w.Header().Set("WWW-Authenticate", `Bearer realm="imprint-admin", error="invalid_token"`)
			}
			return err
		}
		att.Succeed()
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, actorKey, "admin-token:"+t.Name)))
		return nil
	})
}

// auditChanges records every admin request that may change something
// (not GET or HEAD), over the socket or remotely: first that it is about
// to happen, then how it ended. If the first record cannot be written
// the request is refused and nothing changes (security.md AU-4: admin
// writes fail closed when the audit log cannot be written).
func (s *Server) auditChanges(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		who := actor(ctx)
		src := ""
		if who != "admin-socket" {
			src = s.clientIP(r)
		}
		details := map[string]string{"method": r.Method, "path": r.URL.Path}
		intent := &deploy.AuditEvent{Action: "admin.request", Outcome: auth.OutcomeStarted, Actor: who, Source: src, Details: details}
		if err := s.auditor.Record(context.WithoutCancel(ctx), intent); err != nil {
			s.log.Error("audit write failed; admin change refused", "method", r.Method, "path", r.URL.Path, "err", err)
			s.writeError(w, r, deploy.Wrap(deploy.KindUnavailable, err,
				"the audit log cannot be written, so no change was made; check the server's log and disk"))
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		outcome := auth.OutcomeSuccess
		if sw.status >= 400 {
			outcome = auth.OutcomeFailure
		}
		done := map[string]string{"method": r.Method, "path": r.URL.Path, "status": fmt.Sprint(sw.status)}
		s.record(ctx, &deploy.AuditEvent{Action: "admin.request", Outcome: outcome, Actor: who, Source: src, Details: done})
	})
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// adminTokenView is an admin token as the API shows it: never its hash.
func adminTokenView(t *auth.AdminToken) wire.AdminToken {
	return wire.AdminToken{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

func (s *Server) adminCreateToken(w http.ResponseWriter, r *http.Request) error {
	var req wire.AdminTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	var ttl time.Duration
	if req.Expires != "" {
		d, err := time.ParseDuration(req.Expires)
		if err != nil || d <= 0 {
			return deploy.Errorf(deploy.KindInvalid, "expires: %q is not a positive duration such as 2160h", req.Expires)
		}
		ttl = d
	}
	tok, t, err := s.adminTokens.Create(r.Context(), req.Name, ttl)
	if err != nil {
		return err
	}
	details := map[string]string{"token": t.ID, "name": t.Name}
	if t.ExpiresAt != nil {
		details["expiresAt"] = t.ExpiresAt.Format(time.RFC3339)
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: "admin.token.create", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()), Details: details})
	writeJSON(w, http.StatusCreated, wire.NewAdminToken{Token: tok, AdminToken: adminTokenView(t)})
	return nil
}

func (s *Server) adminListTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.adminTokens.List(r.Context())
	if err != nil {
		return err
	}
	out := make([]wire.AdminToken, 0, len(ts))
	for _, t := range ts {
		out = append(out, adminTokenView(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) adminRevokeToken(w http.ResponseWriter, r *http.Request) error {
	t, err := s.adminTokens.Revoke(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: "admin.token.revoke", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()),
		Details: map[string]string{"token": t.ID, "name": t.Name}})
	writeJSON(w, http.StatusOK, adminTokenView(t))
	return nil
}
