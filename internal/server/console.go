package server

import (
	"context"
	"net/http"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence/validate"
	"github.com/imprint-osd/imprint/internal/server/web"
)

// openConsole builds the console accounts service and the web console
// served on the HTTPS listener (web package). Its changes go through the
// remote admin API in-process, audited under "console:NAME".
func (s *Server) openConsole() error {
	var err error
	if s.users, err = auth.NewUsers(s.store, s.cfg.PasscodeArgon2); err != nil {
		return err
	}
	s.console, err = web.New(web.Deps{
		Store:    s.store,
		Users:    s.users,
		Throttle: s.throttle,
		Record:   s.auditor.Record,
		Admin:    s.auditChanges(s.adminMux(false)),
		// Admin tokens are managed only over the socket, never with a
		// token; a console admin (password account, admin role) may,
		// and the console sends nothing else there.
		AdminTokens: s.auditChanges(s.adminMux(true)),
		WithActor: func(ctx context.Context, who string) context.Context {
			return context.WithValue(ctx, actorKey, who)
		},
		ClientIP: s.clientIP,
		Log:      s.log,
		Now:      s.now,
		Validate: func(ctx context.Context, ts *deploy.TaskSequence) (validate.Result, error) {
			return validate.TaskSequence(ctx, ts, resolver{s.store})
		},
	})
	return err
}

// consoleLogout ends the console sessions of an account whose password
// changed or that was removed.
func (s *Server) consoleLogout(user string) {
	if s.console != nil {
		s.console.LogoutUser(auth.NormalizeUserName(user))
	}
}

// consoleRoutes adds the console's pages to the HTTPS mux.
func (s *Server) consoleRoutes(mux *http.ServeMux) { s.console.Register(mux) }
