package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence/validate"
	"github.com/imprint-osd/imprint/internal/wire"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the Content-Security-Policy of every console response: scripts
// and styles only from the console's own files, no inline code, no
// framing, forms only to itself.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Deps is what the console needs from the server.
type Deps struct {
	Store    deploy.Store
	Users    *auth.Users
	Throttle *auth.Throttle
	// Record writes one audit event (the server's auditor).
	Record func(ctx context.Context, e *deploy.AuditEvent) error
	// Admin is the server's admin API (audited); every console change
	// is a request to it made in-process under the account's name.
	Admin http.Handler
	// WithActor marks ctx as acting for actor (for Admin's audit).
	WithActor func(ctx context.Context, actor string) context.Context
	// ClientIP is the request's source as the server sees it.
	ClientIP func(r *http.Request) string
	Log      *slog.Logger
	Now      func() time.Time
	// Validate is the server's task-sequence validation (the checks a
	// save runs), for the editor to show problems on their steps.
	Validate func(ctx context.Context, ts *deploy.TaskSequence) (validate.Result, error)
	// IdleTimeout and AbsoluteTimeout end sessions (zero: 30 minutes
	// and 12 hours). Poll is how often live pages look for changes
	// (zero: one second).
	IdleTimeout, AbsoluteTimeout, Poll time.Duration
	// Changes, when set, subscribes to run changes (runID "" for any run;
	// on a shared database, those of every replica): a live page renders
	// again at once on one instead of at its next Poll. It returns the
	// wake-up channel and the function that ends the subscription.
	Changes func(runID string) (<-chan struct{}, func())

	// --- content uploads, devices, security (conadmin) ---
	// AdminTokens is the admin API that also manages admin tokens (the
	// socket's); the console sends it only /admin/v1/tokens requests, for
	// admins.
	AdminTokens http.Handler
	// MaxUpload bounds one content upload (zero: 64 GiB); Uploads is how
	// many may run at once (zero: 4).
	MaxUpload int64
	Uploads   int

	// BuildBootImage builds the boot image, writing its progress lines to
	// log: what `imprint bootimage build` does (the server wires
	// bootimage.BuildDebian). Nil: the console cannot build one.
	BuildBootImage func(ctx context.Context, log io.Writer) error
}

// Console serves the web console.
type Console struct {
	d        Deps
	sessions *sessions
	pages    map[string]*template.Template
	stop     chan struct{} // closed by Close: live streams end
	stopOnce sync.Once
	uploads  chan struct{}  // a slot per running content upload
	build    buildJob       // the boot image build (bootbuild.go)
	jobs     sync.WaitGroup // running background jobs
}

// Close ends every live stream, so a server shutdown does not wait for
// browsers to hang up. Register it with http.Server.RegisterOnShutdown.
func (c *Console) Close() { c.stopOnce.Do(func() { close(c.stop) }) }

// Wait returns when the background jobs (a boot image build) have ended;
// after Close they are canceled.
func (c *Console) Wait() { c.jobs.Wait() }

// New builds the console; its templates are parsed once here.
func New(d Deps) (*Console, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.IdleTimeout <= 0 {
		d.IdleTimeout = 30 * time.Minute
	}
	if d.AbsoluteTimeout <= 0 {
		d.AbsoluteTimeout = 12 * time.Hour
	}
	if d.Poll <= 0 {
		d.Poll = time.Second
	}
	c := &Console{d: d, sessions: newSessions(d.IdleTimeout, d.AbsoluteTimeout, d.Now), pages: map[string]*template.Template{}, stop: make(chan struct{})}
	if d.Uploads <= 0 {
		d.Uploads = defaultUploads
	}
	c.d, c.uploads = d, make(chan struct{}, d.Uploads)
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New(base).Funcs(funcs()).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", base, err)
		}
		c.pages[base] = t
	}
	return c, nil
}

// LogoutUser ends every console session of user.
func (c *Console) LogoutUser(user string) { c.sessions.removeUser(user) }

// Register adds the console's routes to mux (the HTTPS API mux; the API
// keeps /v1 and /admin/v1).
func (c *Console) Register(mux *http.ServeMux) {
	h := func(p string, f http.HandlerFunc) { mux.Handle(p, c.headers(f)) }
	h("GET /{$}", c.page(deploy.RoleViewer, c.dashboard))
	h("GET /login", c.loginPage)
	h("POST /login", c.login)
	h("POST /logout", c.change(deploy.RoleViewer, c.logout))
	h("GET /runs/{id}", c.page(deploy.RoleViewer, c.runPage))
	h("GET /runs/{id}/logs/{name}", c.page(deploy.RoleViewer, c.runLog))
	h("GET /runs/{id}/logs/{name}/view", c.page(deploy.RoleViewer, c.runLogView))
	h("GET /ts", c.page(deploy.RoleViewer, c.tsList))
	h("GET /ts/{id}/export", c.page(deploy.RoleViewer, c.tsExport))
	h("POST /ts/import", c.change(deploy.RoleOperator, c.tsImport))
	h("POST /ts/new", c.change(deploy.RoleOperator, c.tsNew))
	h("POST /ts/{id}/versions/{no}/status", c.change(deploy.RoleOperator, c.tsStatus))
	// Task-sequence editor (editor.go).
	h("GET /ts/{id}/versions/{no}/edit", c.page(deploy.RoleViewer, c.editPage))
	h("POST /ts/{id}/versions/{no}/edit", c.change(deploy.RoleOperator, c.editPost))
	h("GET /content", c.page(deploy.RoleViewer, c.contentList))
	h("GET /events/dashboard", c.page(deploy.RoleViewer, c.sseDashboard))
	h("GET /events/runs/{id}", c.page(deploy.RoleViewer, c.sseRun))
	c.registerAdmin(h) // content uploads, devices, boot images, security (admin.go)
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", c.headers(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.StripPrefix("/static/", http.FileServerFS(static)).ServeHTTP(w, r)
	}))
}

// headers sets the security headers of every console response.
func (c *Console) headers(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin") // not no-referrer: Chromium then sends "Origin: null" on POST
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next(w, r)
	}
}

type ctxKey int

const sessKey ctxKey = 0

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessKey).(*session)
	return s
}

// current returns the request's live session, or nil.
func (c *Console) current(r *http.Request) (*session, string) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, ""
	}
	return c.sessions.get(ck.Value), ck.Value
}

// page wraps a read: a session with at least role, else the login page
// (or 403).
func (c *Console) page(role deploy.Role, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _ := c.current(r)
		if s == nil {
			if strings.HasPrefix(r.URL.Path, "/events/") {
				http.Error(w, "not logged in", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if !s.role.AtLeast(role) {
			c.forbidden(w, r, s, "your role ("+string(s.role)+") may not see this page")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessKey, s)))
	}
}

// change wraps a state change: same origin, a session, the session's CSRF
// token in the form field "csrf" or the X-CSRF-Token header, and at least
// role. Anything else is refused with 403 (401 without a session) and
// audited.
func (c *Console) change(role deploy.Role, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _ := c.current(r)
		if s == nil {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		if why := crossSite(r); why != "" {
			c.refuse(w, r, s, why)
			return
		}
		tok := r.Header.Get("X-CSRF-Token")
		if tok == "" {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			tok = r.FormValue("csrf") // parses urlencoded and multipart bodies
		}
		if !sameToken(tok, s.csrf) {
			c.refuse(w, r, s, "missing or wrong CSRF token")
			return
		}
		if !s.role.AtLeast(role) {
			c.refuse(w, r, s, "role "+string(s.role)+" may not do this; it needs "+string(role))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessKey, s)))
	}
}

// maxForm bounds a console form (an imported task sequence included).
const maxForm = 16 << 20

// crossSite returns why a state-changing request does not come from a
// console page, or "". Browsers send Sec-Fetch-Site and Origin on POST;
// a request without them (curl, tests) still needs the CSRF token.
func crossSite(r *http.Request) string {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" {
		return "cross-site request (Sec-Fetch-Site: " + sfs + ")"
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "https" || u.Host != r.Host {
			return "request from another origin (" + o + ")"
		}
	}
	return ""
}

func (c *Console) refuse(w http.ResponseWriter, r *http.Request, s *session, why string) {
	c.audit(r, s, "console.refused", auth.OutcomeFailure, map[string]string{"method": r.Method, "path": r.URL.Path, "reason": why})
	c.forbidden(w, r, s, why)
}

func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, s *session, why string) {
	w.WriteHeader(http.StatusForbidden)
	c.render(w, r, "error", s, "Refused", map[string]string{"Message": "Refused by the server: " + why + "."})
}

// audit records a console event under the account's name.
func (c *Console) audit(r *http.Request, s *session, action, outcome string, details map[string]string) {
	e := &deploy.AuditEvent{Action: action, Outcome: outcome, Source: c.d.ClientIP(r), Details: details}
	if s != nil {
		e.Actor = actorName(s.user)
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["consoleSession"] = s.id
	}
	if err := c.d.Record(context.WithoutCancel(r.Context()), e); err != nil {
		c.d.Log.Error("audit write failed", "action", action, "err", err)
	}
}

// actorName is how the audit log names a console account.
func actorName(user string) string { return "console:" + user }

// adminCall runs one request against the admin API in-process as the
// session's account and returns its status and body.
func (c *Console) adminCall(r *http.Request, method, path, contentType string, body io.Reader) (int, []byte) {
	s := sessionOf(r)
	ctx := c.d.WithActor(r.Context(), actorName(s.user))
	req := httptest.NewRequestWithContext(ctx, method, path, body)
	req.RemoteAddr = r.RemoteAddr
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	c.d.Admin.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// adminJSON is adminCall with a JSON body; the answer's error message is
// returned when the status is not 2xx.
func (c *Console) adminJSON(r *http.Request, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	code, b := c.adminCall(r, method, path, "application/json", body)
	if code >= 300 {
		return code, fmt.Errorf("%s", apiMessage(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return code, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return code, nil
}

// apiMessage is the message of an admin API error body.
func apiMessage(b []byte) string {
	var e wire.ErrorBody
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return strings.TrimSpace(string(b))
}
