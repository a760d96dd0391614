package web

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
)

type loginData struct {
	NoUsers bool
	Name    string
	Error   string
	Token   string
}

// loginPage shows the form (also to a signed-in browser: signing in
// again, maybe as another account, replaces the session), with a fresh login CSRF token in a cookie and
// the form; with no account yet it says how to create the first admin.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.showLogin(w, r, http.StatusOK, loginData{})
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	any, err := c.d.Users.Any(r.Context())
	if err != nil {
		c.d.Log.Error("console: list users", "err", err)
	}
	d.NoUsers = err == nil && !any
	d.Token = randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: d.Token, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	w.WriteHeader(status)
	c.render(w, r, "login", nil, "Sign in", d)
}

// login checks the password through the same throttle as the passcode
// (per source and per account name) and starts a new session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	name := auth.NormalizeUserName(r.PostFormValue("name"))
	if why := crossSite(r); why != "" {
		c.audit(r, nil, "console.login", auth.OutcomeFailure, map[string]string{"user": name, "reason": why})
		c.showLogin(w, r, http.StatusForbidden, loginData{Name: name, Error: "Refused: " + why + "."})
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(ck.Value, r.PostFormValue("csrf")) {
		c.audit(r, nil, "console.login", auth.OutcomeFailure, map[string]string{"user": name, "reason": "missing or wrong login CSRF token"})
		c.showLogin(w, r, http.StatusForbidden, loginData{Name: name, Error: "The form expired or did not come from this page: try again."})
		return
	}
	src := c.d.ClientIP(r)
	att, wait := c.d.Throttle.Begin(src, "console-user:"+name)
	if att == nil {
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		c.audit(r, nil, "console.login", auth.OutcomeThrottled, map[string]string{"user": name})
		c.showLogin(w, r, http.StatusTooManyRequests, loginData{Name: name,
			Error: fmt.Sprintf("Too many failed attempts: try again in %s.", wait.Round(time.Second))})
		return
	}
	defer att.Abandon()
	u, err := c.d.Users.Check(r.Context(), name, r.PostFormValue("password"))
	if err != nil {
		if deploy.ErrorKind(err) == deploy.KindUnauthorized {
			att.Fail()
		}
		c.audit(r, nil, "console.login", auth.OutcomeFailure, map[string]string{"user": name})
		c.showLogin(w, r, http.StatusUnauthorized, loginData{Name: name, Error: "Wrong name or password."})
		return
	}
	att.Succeed()
	// A session cookie sent along (another account, or planted) ends
	// here: the new session always has a new token.
	if _, old := c.current(r); old != "" {
		c.sessions.remove(old)
	}
	tok, s := c.sessions.create(u.Name, u.Role)
	c.setSession(w, tok)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	c.audit(r, s, "console.login", auth.OutcomeSuccess, map[string]string{"user": u.Name, "role": string(u.Role)})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) setSession(w http.ResponseWriter, tok string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.d.AbsoluteTimeout.Seconds())})
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if _, tok := c.current(r); tok != "" {
		c.sessions.remove(tok)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	c.audit(r, sessionOf(r), "console.logout", auth.OutcomeSuccess, nil)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
