package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// Security: the summary everyone may read; passcode, anonymous networks,
// machine sessions, admin tokens and the audit log for admins. Each
// change is the admin API request `imprint passcode …`, `imprint security
// set …`, `imprint sessions revoke`, `imprint token …` sends.

type securityData struct {
	Settings wire.Security
	Passcode wire.PasscodeStatus
}

func (c *Console) securityPage(w http.ResponseWriter, r *http.Request) {
	var d securityData
	if code, err := c.adminJSON(r, http.MethodGet, "/admin/v1/security", nil, &d.Settings); err != nil {
		c.fail(w, r, code, err)
		return
	}
	if code, err := c.adminJSON(r, http.MethodGet, "/admin/v1/passcode", nil, &d.Passcode); err != nil {
		c.fail(w, r, code, err)
		return
	}
	c.render(w, r, "security", sessionOf(r), "Security", d)
}

func (c *Console) securityAnonymous(w http.ResponseWriter, r *http.Request) {
	on := r.PostFormValue("on") == "true"
	req := wire.SecuritySwitch{On: on}
	from := splitList(strings.ReplaceAll(r.PostFormValue("from"), " ", ","))
	if on && len(from) > 0 {
		req.From = from
	}
	if code, err := c.adminJSON(r, http.MethodPut, "/admin/v1/security/anonymous", req, nil); err != nil {
		c.fail(w, r, code, fmt.Errorf("anonymous: %w", err))
		return
	}
	msg := "Anonymous authentication is off."
	switch {
	case on && len(from) > 0:
		msg = "Anonymous authentication is ON from " + strings.Join(from, ", ") + ": any machine there can run any active task sequence."
	case on:
		msg = "Anonymous authentication is ON: any machine that reaches this server can run any active task sequence."
	}
	back(w, r, "/security", msg)
}

// passcodeSummary says what a passcode change (the admin API's answer) did.
func passcodeSummary(a wire.PasscodeChange, what string) string {
	s := fmt.Sprintf("%s (generation %d); %d machine sessions revoked.", what, a.Generation, a.SessionsRevoked)
	if !a.GraceUntil.IsZero() {
		s += " The previous passcode still works until " + a.GraceUntil.Local().Format("2006-01-02 15:04") + "."
	}
	return s
}

func (c *Console) passcodeSet(w http.ResponseWriter, r *http.Request) {
	var a wire.PasscodeChange
	if code, err := c.adminJSON(r, http.MethodPut, "/admin/v1/passcode", wire.PasscodeRequest{Passcode: r.PostFormValue("passcode")}, &a); err != nil {
		c.fail(w, r, code, fmt.Errorf("set passcode: %w", err))
		return
	}
	back(w, r, "/security", passcodeSummary(a, "Passcode set"))
}

// passcodeGenerate shows the generated passcode on this one answer (never
// in a URL, never again).
func (c *Console) passcodeGenerate(w http.ResponseWriter, r *http.Request) {
	var a wire.PasscodeChange
	if code, err := c.adminJSON(r, http.MethodPost, "/admin/v1/passcode/generate", nil, &a); err != nil {
		c.fail(w, r, code, fmt.Errorf("generate passcode: %w", err))
		return
	}
	c.render(w, r, "secret", sessionOf(r), "New passcode", map[string]string{
		"What": "The new passcode", "Secret": a.Code, "Note": passcodeSummary(a, "Passcode generated"), "Back": "/security"})
}

func (c *Console) passcodeRotate(w http.ResponseWriter, r *http.Request) {
	grace := strings.TrimSpace(r.PostFormValue("grace"))
	if grace == "" {
		grace = "0"
	}
	var a wire.PasscodeChange
	req := wire.PasscodeRequest{Passcode: r.PostFormValue("passcode"), Grace: grace}
	if code, err := c.adminJSON(r, http.MethodPost, "/admin/v1/passcode/rotate", req, &a); err != nil {
		c.fail(w, r, code, fmt.Errorf("rotate passcode: %w", err))
		return
	}
	if a.Code != "" { // rotated to a generated one
		c.render(w, r, "secret", sessionOf(r), "New passcode", map[string]string{
			"What": "The new passcode", "Secret": a.Code, "Note": passcodeSummary(a, "Passcode rotated"), "Back": "/security"})
		return
	}
	back(w, r, "/security", passcodeSummary(a, "Passcode rotated"))
}

func (c *Console) passcodeClear(w http.ResponseWriter, r *http.Request) {
	var a wire.PasscodeChange
	if code, err := c.adminJSON(r, http.MethodDelete, "/admin/v1/passcode", nil, &a); err != nil {
		c.fail(w, r, code, fmt.Errorf("clear passcode: %w", err))
		return
	}
	back(w, r, "/security", passcodeSummary(a, "Passcode cleared"))
}

// Machine sessions.

func (c *Console) sessionsPage(w http.ResponseWriter, r *http.Request) {
	var list []deploy.Session
	if code, err := c.adminJSON(r, http.MethodGet, "/admin/v1/sessions", nil, &list); err != nil {
		c.fail(w, r, code, err)
		return
	}
	c.render(w, r, "security_sessions", sessionOf(r), "Machine sessions", list)
}

func (c *Console) sessionRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if code, err := c.adminJSON(r, http.MethodDelete, "/admin/v1/sessions/"+url.PathEscape(id), nil, nil); err != nil {
		c.fail(w, r, code, fmt.Errorf("revoke session: %w", err))
		return
	}
	back(w, r, "/security/sessions", "Session "+id+" revoked.")
}

// sessionsRevoke ends every session of one device, or all of them.
func (c *Console) sessionsRevoke(w http.ResponseWriter, r *http.Request) {
	q := url.Values{}
	if dev := strings.TrimSpace(r.PostFormValue("device")); dev != "" {
		q.Set("device", dev)
	} else if r.PostFormValue("all") == "1" {
		q.Set("all", "1")
	}
	var a wire.SessionsRevoked
	if code, err := c.adminJSON(r, http.MethodDelete, "/admin/v1/sessions?"+q.Encode(), nil, &a); err != nil {
		c.fail(w, r, code, fmt.Errorf("revoke sessions: %w", err))
		return
	}
	back(w, r, "/security/sessions", fmt.Sprintf("%d sessions revoked.", a.SessionsRevoked))
}

// Admin tokens: the socket's admin API, the only one that manages them.

func (c *Console) tokensCall(r *http.Request, method, path string, in, out any) (int, error) {
	if c.d.AdminTokens == nil {
		return http.StatusNotImplemented, fmt.Errorf("this server does not let the console manage admin tokens: use `imprint token` on the server")
	}
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return 0, err
		}
	}
	ctx := c.d.WithActor(r.Context(), actorName(sessionOf(r).user))
	req := httptest.NewRequestWithContext(ctx, method, path, &body)
	req.RemoteAddr = r.RemoteAddr
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	c.d.AdminTokens.ServeHTTP(rec, req)
	if rec.Code >= 300 {
		return rec.Code, fmt.Errorf("%s", apiMessage(rec.Body.Bytes()))
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			return rec.Code, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return rec.Code, nil
}

type tokenRow struct {
	wire.AdminToken
	Live bool
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request) {
	var list []wire.AdminToken
	if code, err := c.tokensCall(r, http.MethodGet, "/admin/v1/tokens", nil, &list); err != nil {
		c.fail(w, r, code, err)
		return
	}
	rows := make([]tokenRow, len(list))
	for i, t := range list {
		// Live is auth's rule, on the two times it reads.
		live := (&auth.AdminToken{ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}).Live(c.d.Now())
		rows[i] = tokenRow{AdminToken: t, Live: live}
	}
	c.render(w, r, "security_tokens", sessionOf(r), "Admin tokens", rows)
}

// tokenCreate shows the new token on this one answer, never again.
func (c *Console) tokenCreate(w http.ResponseWriter, r *http.Request) {
	var a wire.NewAdminToken
	req := wire.AdminTokenRequest{Name: r.PostFormValue("name"), Expires: strings.TrimSpace(r.PostFormValue("expires"))}
	if code, err := c.tokensCall(r, http.MethodPost, "/admin/v1/tokens", req, &a); err != nil {
		c.fail(w, r, code, fmt.Errorf("create admin token: %w", err))
		return
	}
	c.render(w, r, "secret", sessionOf(r), "New admin token", map[string]string{
		"What": "Admin token " + a.Name + " (" + a.ID + ")", "Secret": a.Token,
		"Note": "Give it to `imprint --server URL --token …` or an Authorization: Bearer header; revoke it on the Admin tokens page.",
		"Back": "/security/tokens"})
}

func (c *Console) tokenRevoke(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	if code, err := c.tokensCall(r, http.MethodDelete, "/admin/v1/tokens/"+url.PathEscape(ref), nil, nil); err != nil {
		c.fail(w, r, code, fmt.Errorf("revoke admin token: %w", err))
		return
	}
	back(w, r, "/security/tokens", "Admin token "+ref+" revoked.")
}

// Audit log.

// auditPageSize is how many audit entries one page shows.
const auditPageSize = 50

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	after = max(after, 0)
	var ev []deploy.AuditEvent
	path := fmt.Sprintf("/admin/v1/audit?after=%d&limit=%d", after, auditPageSize+1)
	if code, err := c.adminJSON(r, http.MethodGet, path, nil, &ev); err != nil {
		c.fail(w, r, code, err)
		return
	}
	d := map[string]any{"After": after, "Prev": max(after-auditPageSize, 0)}
	if len(ev) > auditPageSize {
		ev = ev[:auditPageSize]
		d["Next"] = ev[len(ev)-1].Seq
	}
	d["Events"] = ev
	c.render(w, r, "audit", sessionOf(r), "Audit log", d)
}

// auditVerify checks the whole hash chain, as `imprint audit verify`.
func (c *Console) auditVerify(w http.ResponseWriter, r *http.Request) {
	var a wire.AuditVerify
	if code, err := c.adminJSON(r, http.MethodGet, "/admin/v1/audit/verify", nil, &a); err != nil {
		c.fail(w, r, code, fmt.Errorf("audit log: %w", err))
		return
	}
	back(w, r, "/security/audit", fmt.Sprintf("Audit log verified: %d entries, hash chain intact.", a.Verified))
}
