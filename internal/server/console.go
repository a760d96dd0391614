package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/bootimage"
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
	d := web.Deps{
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
		BuildBootImage: s.buildBootImage,
		Changes:        s.feed.subscribe,
	}
	if s.cfg.BuildBootImage != nil {
		d.BuildBootImage = s.cfg.BuildBootImage
	}
	s.console, err = web.New(d)
	return err
}

// buildBootImage is the console's boot image build: what `imprint
// bootimage build` does with its defaults (Debian's kernel and signed
// chain into DATA/cache, the image into DATA/boot/images/x86_64, where
// the boot port serves it at once; imprint-agent beside this executable).
// Unlike the CLI it does not register the image as a content item.
func (s *Server) buildBootImage(ctx context.Context, log io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this executable to locate imprint-agent beside it: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	agent := filepath.Join(filepath.Dir(exe), "imprint-agent")
	if info, err := os.Stat(agent); err != nil || !info.Mode().IsRegular() {
		return fmt.Errorf("agent %s not found: build it (make build puts it beside imprint)", agent)
	}
	img, err := bootimage.BuildDebian(ctx, bootimage.DebianOptions{Agent: agent, Cache: filepath.Join(s.cfg.DataDir, "cache"),
		Out: filepath.Join(BootImagesDir(s.cfg.DataDir), "x86_64"), Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "built boot image of kernel %s in %s\n", img.Manifest.KernelVersion, img.Dir)
	return nil
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
