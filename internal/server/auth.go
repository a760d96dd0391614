package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/netlimit"
	"github.com/imprint-osd/imprint/internal/wire"
)

// securitySettingKey holds the admin's client-authentication choices.
const securitySettingKey = auth.SecuritySettingKey

// Security is what `imprint security show` reports and `security set`
// changes; auth.Login reads it at every login.
type Security = auth.Security

func (s *Server) security(ctx context.Context) (Security, error) {
	return auth.LoadSecurity(ctx, s.store)
}

// updateSecurity applies change to the stored security settings in one
// store transaction, so that a change made at the same time through
// another replica is not lost; change may run more than once.
func (s *Server) updateSecurity(ctx context.Context, change func(*Security) error) error {
	return s.store.UpdateSetting(ctx, securitySettingKey, func(old []byte) ([]byte, error) {
		var sec Security
		if old != nil {
			if err := json.Unmarshal(old, &sec); err != nil {
				return nil, fmt.Errorf("security settings: %w", err)
			}
		}
		if err := change(&sec); err != nil {
			return nil, err
		}
		return json.Marshal(sec)
	})
}

// clientIP is the request's source address; X-Forwarded-For is believed
// only when the direct peer is a configured trusted proxy.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer := net.ParseIP(host)
	if peer == nil || !s.trusted(peer) {
		return host
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	// Walk from the nearest hop back, skipping our own proxies.
	for i := len(hops) - 1; i >= 0; i-- {
		ip := net.ParseIP(strings.TrimSpace(hops[i]))
		if ip == nil {
			break
		}
		if !s.trusted(ip) {
			return ip.String()
		}
	}
	return host
}

func (s *Server) trusted(ip net.IP) bool {
	for _, n := range s.proxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// authMethods lists the modes that are on, in DeployR's order: anonymous →
// certificate → Entra ID → passcode. src, when not empty, is the address
// of the machine asking: anonymous is left out where its network limit
// would refuse it. Empty, it is the admin's view of every mode.
func (s *Server) authMethods(ctx context.Context, src string) (wire.AuthMethods, error) {
	sec, err := s.security(ctx)
	if err != nil {
		return wire.AuthMethods{}, err
	}
	st, err := s.passcodes.Status(ctx)
	if err != nil {
		return wire.AuthMethods{}, err
	}
	m := wire.AuthMethods{Methods: []string{}, BootImageMethods: []string{}}
	if sec.Anonymous && (src == "" || sec.AnonymousAllowedFrom(src)) {
		m.Methods = append(m.Methods, auth.MethodAnonymous)
	}
	if s.certs != nil {
		m.Methods = append(m.Methods, auth.MethodCertificate)
	}
	if sec.Entra != nil {
		m.Methods = append(m.Methods, auth.MethodEntra)
		scope := sec.Entra.Audience
		if scope == "" {
			scope = "api://" + sec.Entra.ClientID
		}
		m.Entra = &wire.EntraSettings{Authority: sec.Entra.Issuer(), TenantID: sec.Entra.TenantID, ClientID: sec.Entra.ClientID, Scope: scope + "/.default"}
	}
	if st.Set && s.login.PasscodeAllowed(sec) {
		m.Methods = append(m.Methods, auth.MethodPasscode)
	}
	// Entra ID and certificates take precedence over the passcode in the
	// boot image; an installed OS may still present the Passcode variable.
	for _, x := range m.Methods {
		if x == auth.MethodPasscode && (sec.Entra != nil || s.certs != nil) {
			continue
		}
		m.BootImageMethods = append(m.BootImageMethods, x)
	}
	if len(m.Methods) == 0 && !sec.Anonymous { // nothing configured, not merely not offered here
		m.Hint = "no client authentication is configured on this server: run `imprint passcode set` " +
			"(or `imprint passcode generate`), configure Entra ID (`imprint security set entra …`) or " +
			"certificates (`imprint server --client-ca`), or for an isolated lab `imprint security set anonymous on`"
	}
	return m, nil
}

func (s *Server) handleAuthMethods(w http.ResponseWriter, r *http.Request) error {
	m, err := s.authMethods(r.Context(), s.clientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// maxAuthBody bounds a POST /v1/auth/token body (security.md PC-8): a
// passcode is at most 1 KiB and an Entra access token a few KiB.
const maxAuthBody = 8 << 10

// handleToken reads a login and answers auth.Login's decision: the
// settings, methods policy, throttle, equal-cost refusals, session and
// audit are its. A refusal by the throttle costs O(1) and writes nothing
// per request (s.refuse).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	src := s.clientIP(r)
	// A source already waiting out its backoff is refused before its body
	// is read.
	if ok, wait := s.login.Allow(src); !ok {
		return s.refuse(w, "auth.attempt", src, wait)
	}
	var req wire.TokenRequest
	r.Body = http.MaxBytesReader(w, r.Body, maxAuthBody)
	decErr := decodeJSON(w, r, &req)
	var mbe *http.MaxBytesError
	if errors.As(decErr, &mbe) {
		s.login.Unreadable(src) // read 8 KiB for nothing: counts
		return decErr           // 413: says nothing about any credential
	}
	if errors.Is(decErr, netlimit.ErrSlowBody) {
		return decErr // 408: the connection is cut; costs no Argon2
	}
	att := auth.LoginAttempt{Method: req.Method, Source: src, Passcode: req.Passcode, AccessToken: req.AccessToken,
		Device: req.Device.Device(), Malformed: decErr != nil}
	if decErr == nil && req.Method == auth.MethodCertificate && s.certs != nil && r.TLS != nil {
		att.Certificate, _ = s.certs.Identity(*r.TLS)
	}
	res, err := s.login.Login(ctx, att)
	var refused *auth.RefusedError
	if errors.As(err, &refused) {
		return s.refuse(w, "auth.attempt", src, refused.Wait)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.TokenAnswer{Token: res.Token, ExpiresAt: res.Session.ExpiresAt, SessionID: res.Session.ID})
	return nil
}

// refuse answers 429 with Retry-After for a request the throttle turned
// away. It costs O(1) and writes nothing: the refusal is counted, and
// s.refusals writes one audit event per source per minute and one log
// line in all (issue 9: every 429 wrote an audit row and a log line).
func (s *Server) refuse(w http.ResponseWriter, action, src string, wait time.Duration) error {
	s.refusals.Note(action, src)
	s.metrics.throttled.Inc()
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, wire.ErrorBody{Error: wire.ErrorDetail{Code: deploy.KindThrottled,
		Message: fmt.Sprintf("too many failed attempts; try again in %s", time.Duration(secs)*time.Second)}})
	return nil
}

// deviceID keys a device by SMBIOS UUID, else by its first MAC; d has
// been through Normalize.
func deviceID(d *deploy.Device) string { return auth.DeviceKey(d) }

// record writes an audit event; a failure to audit is logged loudly but
// does not turn a login into an error.
func (s *Server) record(ctx context.Context, e *deploy.AuditEvent) {
	s.metrics.audited(e)
	if err := s.auditor.Record(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit write failed", "action", e.Action, "err", err)
	}
}

// ctxKey is the type of request-scoped values.
type ctxKey int

const sessionKey ctxKey = iota

// requireSession authenticates the bearer token and puts the session in
// the request context.
func (s *Server) requireSession(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imprint"`)
			return deploy.Errorf(deploy.KindUnauthorized, "a bearer token is required; authenticate at /v1/auth/token")
		}
		sess, err := s.sessions.Authenticate(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imprint", error="invalid_token"`)
			return err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), sessionKey, sess)))
	}
}

func sessionFrom(ctx context.Context) *deploy.Session {
	s, _ := ctx.Value(sessionKey).(*deploy.Session)
	return s
}
