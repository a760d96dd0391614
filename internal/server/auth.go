package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/auth/cert"
	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/netlimit"
)

// securitySettingKey holds the admin's client-authentication choices that
// are not files on disk: anonymous mode and the Entra ID application.
const securitySettingKey = "security"

// Security is what `imprint security show` reports and `security set` changes.
type Security struct {
	Anonymous bool `json:"anonymous"`
	// AnonymousFrom, when set, limits anonymous logins to these networks
	// (CIDRs, e.g. a lab VLAN); from elsewhere anonymous is neither offered
	// nor accepted (security.md GN-1).
	AnonymousFrom []string      `json:"anonymousFrom,omitempty"`
	Entra         *entra.Config `json:"entra,omitempty"`
	// PasscodeAlongside lets an agent in an installed OS still log in
	// with the passcode while Entra ID or certificates are on. Off, the
	// server refuses the passcode then (security.md GN-3); the boot
	// image is never offered it.
	PasscodeAlongside bool `json:"passcodeAlongside,omitempty"`
	// SecureBootOff stops `imprint server --pxe` from sending x86-64 UEFI
	// machines the signed chain (shim → signed GRUB → signed kernel); they
	// get iPXE, which firmware with Secure Boot on refuses. Secure Boot
	// mode is on unless this is set: the signed chain boots machines with
	// Secure Boot off just as well, so being on costs nothing.
	SecureBootOff bool `json:"secureBootOff,omitempty"`
}

// passcodeAllowed reports whether a passcode login may succeed: always
// when it is the strongest mode on, alongside a stronger one only if the
// admin allowed it.
func (s *Server) passcodeAllowed(sec Security) bool {
	return (sec.Entra == nil && s.certs == nil) || sec.PasscodeAlongside
}

func (s *Server) security(ctx context.Context) (Security, error) {
	var sec Security
	b, err := s.store.Setting(ctx, securitySettingKey)
	if deploy.IsNotFound(err) {
		return sec, nil
	}
	if err != nil {
		return sec, err
	}
	if err := json.Unmarshal(b, &sec); err != nil {
		return sec, fmt.Errorf("security settings: %w", err)
	}
	return sec, nil
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

// entraValidators caches one validator (and its JWKS cache) per Entra
// configuration, so a settings change takes effect at the next request.
type entraValidators struct {
	mu   sync.Mutex
	cfg  entra.Config
	v    *entra.Validator
	http *http.Client
}

func (e *entraValidators) get(cfg entra.Config) *entra.Validator {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.v == nil || e.cfg != cfg {
		e.cfg, e.v = cfg, entra.NewValidator(cfg, e.http)
	}
	return e.v
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

// methodOrder is DeployR's: anonymous → certificate → Entra ID → passcode.
type authMethods struct {
	Methods          []string    `json:"methods"`
	BootImageMethods []string    `json:"bootImageMethods"`
	Entra            *entraHints `json:"entra,omitempty"`
	Hint             string      `json:"hint,omitempty"`
}

type entraHints struct {
	Authority string `json:"authority"`
	TenantID  string `json:"tenantId"`
	ClientID  string `json:"clientId"`
	Scope     string `json:"scope"`
}

// authMethods lists the modes that are on. src, when not empty, is the
// address of the machine asking: anonymous is left out where its network
// limit would refuse it. Empty, it is the admin's view of every mode.
func (s *Server) authMethods(ctx context.Context, src string) (authMethods, error) {
	sec, err := s.security(ctx)
	if err != nil {
		return authMethods{}, err
	}
	st, err := s.passcodes.Status(ctx)
	if err != nil {
		return authMethods{}, err
	}
	m := authMethods{Methods: []string{}, BootImageMethods: []string{}}
	if sec.Anonymous && (src == "" || anonymousFrom(sec, src)) {
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
		m.Entra = &entraHints{Authority: sec.Entra.Issuer(), TenantID: sec.Entra.TenantID, ClientID: sec.Entra.ClientID, Scope: scope + "/.default"}
	}
	if st.Set && s.passcodeAllowed(sec) {
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

// anonymousFrom reports whether src may log in anonymously under sec's
// network limit (no limit: anywhere).
func anonymousFrom(sec Security, src string) bool {
	if len(sec.AnonymousFrom) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(src)
	if err != nil {
		return false
	}
	for _, c := range sec.AnonymousFrom {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

type tokenRequest struct {
	Method      string        `json:"method"`
	Passcode    string        `json:"passcode"`
	AccessToken string        `json:"accessToken"`
	Device      deploy.Device `json:"device"`
}

type tokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	SessionID string    `json:"sessionId"`
}

// errAuthFailed is the one answer for a wrong passcode, malformed input,
// a mode that is off and an unknown method: nothing to tell them apart.
var errAuthFailed = auth.ErrBadPasscode

// maxAuthBody bounds a POST /v1/auth/token body (security.md PC-8): a
// passcode is at most 1 KiB and an Entra access token a few KiB.
const maxAuthBody = 8 << 10

// handleToken authenticates a client by one method and mints a session.
// Every request that makes the server work goes through the throttle:
// one that will run Argon2 (a passcode, or the equal-cost refusal of
// malformed input, an unknown method or a mode that is off) is a guess
// and holds a place and a global token while it runs; the others only
// meet the backoff of earlier failures. A failure of any kind counts
// against the source (security.md PC-6, PC-7). A refusal costs O(1) and
// writes nothing per request (s.refuse).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	src := s.clientIP(r)
	// A source already waiting out its backoff is refused before its body
	// is read.
	if ok, wait := s.throttle.Allow(src, ""); !ok {
		return s.refuse(w, "auth.attempt", src, wait)
	}
	var req tokenRequest
	r.Body = http.MaxBytesReader(w, r.Body, maxAuthBody)
	decErr := decodeJSON(w, r, &req)
	var mbe *http.MaxBytesError
	if errors.As(decErr, &mbe) {
		s.throttle.Failure(src, "") // read 8 KiB for nothing: counts
		return decErr               // 413: says nothing about any credential
	}
	if errors.Is(decErr, netlimit.ErrSlowBody) {
		return decErr // 408: the connection is cut; costs no Argon2
	}
	if decErr == nil {
		// A claimed identity that is not one (an escape sequence for the
		// admin's terminal, a megabyte of model name) is malformed input:
		// refused like a wrong passcode, after the same work (PC-5, GN-6).
		decErr = req.Device.Normalize()
	}
	dev := ""
	if decErr == nil {
		dev = deviceID(&req.Device)
	}
	sec, err := s.security(ctx)
	if err != nil {
		return err
	}
	var certID *cert.Identity
	if decErr == nil && req.Method == auth.MethodCertificate && s.certs != nil && r.TLS != nil {
		certID, _ = s.certs.Identity(*r.TLS)
	}
	audit := &deploy.AuditEvent{Action: "auth.attempt", Source: src, DeviceID: dev,
		Details: map[string]string{"method": req.Method}}
	begin := s.throttle.Admit
	if s.runsArgon2(decErr, req.Method, sec, src, certID) {
		begin = s.throttle.Begin
	}
	att, wait := begin(src, dev)
	if att == nil {
		return s.refuse(w, "auth.attempt", src, wait)
	}
	defer att.Abandon() // ends an attempt nothing below ended (a store error)

	sess := &deploy.Session{Method: req.Method, DeviceID: dev, Source: src}
	switch {
	case decErr != nil:
		// Malformed input costs the same as a wrong passcode.
		err = s.passcodes.Refuse(ctx, "")
		audit.Details["reason"] = "malformed request"
	case req.Method == auth.MethodPasscode:
		if !s.passcodeAllowed(sec) {
			// Refused like a wrong passcode, after the same work.
			err = s.passcodes.Refuse(ctx, "")
			audit.Details["reason"] = "passcode not allowed while a stronger mode is on"
		} else {
			err = s.checkPasscode(ctx, req.Passcode, sess)
		}
	case req.Method == auth.MethodAnonymous:
		err = s.checkAnonymous(ctx, sec, src, audit)
	case req.Method == auth.MethodEntra:
		err = s.checkEntra(ctx, sec, req.AccessToken, sess, audit)
	case req.Method == auth.MethodCertificate:
		err = s.checkCertificate(ctx, certID, sess)
	default:
		err = s.passcodes.Refuse(ctx, "")
		audit.Details["reason"] = "unknown method"
	}
	if err != nil {
		switch deploy.ErrorKind(err) {
		case deploy.KindUnauthorized, deploy.KindForbidden:
			att.Fail()
			audit.Outcome = auth.OutcomeFailure
		case deploy.KindThrottled: // the Argon2 queue is full: counts, not evaluated
			att.Busy()
			return s.refuse(w, "auth.attempt", src, time.Second)
		default:
			att.Abandon()
			audit.Outcome = auth.OutcomeFailure
		}
		s.record(ctx, audit)
		return err
	}
	if req.Method == auth.MethodAnonymous {
		att.Pass() // proves nothing: the address is not known good
	} else {
		att.Succeed()
	}
	if dev != "" {
		d := req.Device
		d.ID = dev
		d.LastSeen = s.now()
		if err := s.store.UpsertDevice(ctx, &d); err != nil {
			return err
		}
	}
	token, err := s.sessions.Mint(ctx, sess)
	if err != nil {
		return err
	}
	audit.Outcome, audit.Actor = auth.OutcomeSuccess, sess.Subject
	audit.Details["session"] = sess.ID
	s.record(ctx, audit)
	writeJSON(w, http.StatusOK, tokenResponse{Token: token, ExpiresAt: sess.ExpiresAt, SessionID: sess.ID})
	return nil
}

// runsArgon2 reports whether answering this login runs Argon2: a passcode,
// and every refusal made to cost the same (malformed input, an unknown
// method, a mode that is off or not allowed from src, a certificate
// login without a valid certificate). Such an attempt is a guess for the
// throttle.
func (s *Server) runsArgon2(decErr error, method string, sec Security, src string, certID *cert.Identity) bool {
	if decErr != nil {
		return true
	}
	switch method {
	case auth.MethodAnonymous:
		return !sec.Anonymous || !anonymousFrom(sec, src)
	case auth.MethodEntra:
		return sec.Entra == nil
	case auth.MethodCertificate:
		return certID == nil
	}
	return true // passcode, empty or unknown
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
	writeJSON(w, http.StatusTooManyRequests, errorBody{Error: errorDetail{Code: deploy.KindThrottled,
		Message: fmt.Sprintf("too many failed attempts; try again in %s", time.Duration(secs)*time.Second)}})
	return nil
}

// checkPasscode runs Argon2 (the caller has admitted the attempt through
// the throttle and counts its outcome).
func (s *Server) checkPasscode(ctx context.Context, passcode string, sess *deploy.Session) error {
	gen, err := s.passcodes.Check(ctx, passcode)
	if deploy.ErrorKind(err) == deploy.KindThrottled {
		return err
	}
	if err != nil {
		return errAuthFailed
	}
	sess.Generation = gen
	return nil
}

func (s *Server) checkAnonymous(ctx context.Context, sec Security, src string, audit *deploy.AuditEvent) error {
	if !sec.Anonymous {
		return s.passcodes.Refuse(ctx, "")
	}
	if !anonymousFrom(sec, src) {
		audit.Details["reason"] = "anonymous not allowed from this address"
		return s.passcodes.Refuse(ctx, "")
	}
	return nil
}

func (s *Server) checkEntra(ctx context.Context, sec Security, token string, sess *deploy.Session, audit *deploy.AuditEvent) error {
	if sec.Entra == nil {
		return s.passcodes.Refuse(ctx, "")
	}
	id, err := s.entra.get(*sec.Entra).Validate(ctx, token)
	if err != nil {
		if rej, ok := asReject(err); ok {
			audit.Details["reason"] = rej
		}
		return err
	}
	sess.Subject = id.UPN
	if sess.Subject == "" {
		sess.Subject = id.ObjectID
	}
	audit.Details["entraUser"] = sess.Subject
	audit.Details["entraObjectId"] = id.ObjectID
	return nil
}

// checkCertificate accepts the identity the TLS handshake verified (nil:
// no valid client certificate, refused after the same work as a wrong
// passcode).
func (s *Server) checkCertificate(ctx context.Context, id *cert.Identity, sess *deploy.Session) error {
	if id == nil {
		return s.passcodes.Refuse(ctx, "")
	}
	sess.Subject = id.Subject
	return nil
}

// deviceID keys a device by SMBIOS UUID, else by its first MAC; d has
// been through Normalize.
func deviceID(d *deploy.Device) string {
	if d.UUID != "" {
		return d.UUID
	}
	for _, m := range d.MACs {
		if hw, err := net.ParseMAC(m); err == nil {
			return "mac-" + strings.ReplaceAll(hw.String(), ":", "-")
		}
	}
	return ""
}

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

func asReject(err error) (string, bool) {
	var rej *entra.RejectError
	if errors.As(err, &rej) {
		return rej.Reason, true
	}
	return "", false
}
