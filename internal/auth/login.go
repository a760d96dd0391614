package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/auth/cert"
	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/auth/entra/accesstoken"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// SecuritySettingKey holds the admin's client-authentication choices that
// are not files on disk: anonymous mode and the Entra ID application.
const SecuritySettingKey = "security"

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

// LoadSecurity reads the security settings (all off when never set).
func LoadSecurity(ctx context.Context, st SettingsStore) (Security, error) {
	var sec Security
	b, err := st.Setting(ctx, SecuritySettingKey)
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

// AnonymousAllowedFrom reports whether src may log in anonymously under
// the network limit (no limit: anywhere). It does not look at Anonymous.
func (sec Security) AnonymousAllowedFrom(src string) bool {
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

// DeviceKey keys a device by SMBIOS UUID, else by its first MAC; d has
// been through Normalize. Empty: the machine claimed no identity.
func DeviceKey(d *deploy.Device) string {
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

// LoginStore is what a Login reads and writes: the settings and the
// device records.
type LoginStore interface {
	SettingsStore
	UpsertDevice(ctx context.Context, d *deploy.Device) error
}

// Login decides a machine's login (POST /v1/auth/token) in one call: it
// reads the security settings, applies the methods policy and the
// throttle, makes every refusal cost what a wrong passcode costs, mints
// the session and writes the audit event. The HTTP layer only reads the
// request and writes the answer.
type Login struct {
	Store     LoginStore
	Passcodes *Passcodes
	Throttle  *Throttle
	Sessions  *Sessions
	// Certificates says the certificate method is on (a client CA is
	// configured); the TLS layer verifies the certificate itself.
	Certificates bool
	// EntraHTTP fetches the tenant's signing keys.
	EntraHTTP *http.Client
	// Record writes an audit event; a failure to audit must not turn a
	// login into an error.
	Record func(ctx context.Context, e *deploy.AuditEvent)
	Now    func() time.Time

	mu         sync.Mutex
	entraCfg   entra.Config
	entraCheck *accesstoken.Validator
}

// LoginAttempt is one login as the machine made it.
type LoginAttempt struct {
	Method      string
	Source      string // the client's address
	Passcode    string
	AccessToken string
	// Device is the identity the machine claims, as sent.
	Device deploy.Device
	// Malformed says the request could not be read; it is refused like
	// a wrong passcode, after the same work.
	Malformed bool
	// Certificate is the identity the TLS handshake verified (nil: none
	// or not valid).
	Certificate *cert.Identity
}

// LoginResult is a minted session and its bearer token.
type LoginResult struct {
	Token   string
	Session *deploy.Session
}

// RefusedError is a login the throttle turned away before evaluating it:
// the caller answers 429 with Retry-After Wait.
type RefusedError struct {
	Wait time.Duration
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("too many failed attempts; try again in %s", e.Wait)
}

// errAuthFailed is the one answer for a wrong passcode, malformed input,
// a mode that is off and an unknown method: nothing to tell them apart.
var errAuthFailed = ErrBadPasscode

func (l *Login) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Allow is the check made before a login's body is read: a source still
// waiting out its backoff is refused at once.
func (l *Login) Allow(source string) (ok bool, retryAfter time.Duration) {
	return l.Throttle.Allow(source, "")
}

// Unreadable counts a login body that was too large to read against
// source: reading it was work for nothing.
func (l *Login) Unreadable(source string) { l.Throttle.Failure(source, "") }

// PasscodeAllowed reports whether a passcode login may succeed: always
// when it is the strongest mode on, alongside a stronger one only if the
// admin allowed it.
func (l *Login) PasscodeAllowed(sec Security) bool {
	return (sec.Entra == nil && !l.Certificates) || sec.PasscodeAlongside
}

// Login decides attempt a. Every attempt that makes the server work goes
// through the throttle: one that will run Argon2 (a passcode, or the
// equal-cost refusal of malformed input, an unknown method or a mode that
// is off) is a guess and holds a place and a global token while it runs;
// the others only meet the backoff of earlier failures. A failure of any
// kind counts against the source (security.md PC-6, PC-7). A refusal by
// the throttle is a *RefusedError.
func (l *Login) Login(ctx context.Context, a LoginAttempt) (*LoginResult, error) {
	malformed := a.Malformed
	dev := ""
	if !malformed {
		// A claimed identity that is not one (an escape sequence for the
		// admin's terminal, a megabyte of model name) is malformed input:
		// refused like a wrong passcode, after the same work (PC-5, GN-6).
		if err := a.Device.Normalize(); err != nil {
			malformed = true
		} else {
			dev = DeviceKey(&a.Device)
		}
	}
	sec, err := LoadSecurity(ctx, l.Store)
	if err != nil {
		return nil, err
	}
	certID := a.Certificate
	if malformed || a.Method != MethodCertificate || !l.Certificates {
		certID = nil
	}
	audit := &deploy.AuditEvent{Action: "auth.attempt", Source: a.Source, DeviceID: dev,
		Details: map[string]string{"method": a.Method}}
	begin := l.Throttle.Admit
	if l.runsArgon2(malformed, a.Method, sec, a.Source, certID) {
		begin = l.Throttle.Begin
	}
	att, wait := begin(a.Source, dev)
	if att == nil {
		return nil, &RefusedError{Wait: wait}
	}
	defer att.Abandon() // ends an attempt nothing below ended (a store error)

	sess := &deploy.Session{Method: a.Method, DeviceID: dev, Source: a.Source}
	switch {
	case malformed:
		// Malformed input costs the same as a wrong passcode.
		err = l.Passcodes.Refuse(ctx, "")
		audit.Details["reason"] = "malformed request"
	case a.Method == MethodPasscode:
		if !l.PasscodeAllowed(sec) {
			// Refused like a wrong passcode, after the same work.
			err = l.Passcodes.Refuse(ctx, "")
			audit.Details["reason"] = "passcode not allowed while a stronger mode is on"
		} else {
			err = l.checkPasscode(ctx, a.Passcode, sess)
		}
	case a.Method == MethodAnonymous:
		err = l.checkAnonymous(ctx, sec, a.Source, audit)
	case a.Method == MethodEntra:
		err = l.checkEntra(ctx, sec, a.AccessToken, sess, audit)
	case a.Method == MethodCertificate:
		err = l.checkCertificate(ctx, certID, sess)
	default:
		err = l.Passcodes.Refuse(ctx, "")
		audit.Details["reason"] = "unknown method"
	}
	if err != nil {
		switch deploy.ErrorKind(err) {
		case deploy.KindUnauthorized, deploy.KindForbidden:
			att.Fail()
			audit.Outcome = OutcomeFailure
		case deploy.KindThrottled: // the Argon2 queue is full: counts, not evaluated
			att.Busy()
			return nil, &RefusedError{Wait: time.Second}
		default:
			att.Abandon()
			audit.Outcome = OutcomeFailure
		}
		l.Record(ctx, audit)
		return nil, err
	}
	if a.Method == MethodAnonymous {
		att.Pass() // proves nothing: the address is not known good
	} else {
		att.Succeed()
	}
	if dev != "" {
		d := a.Device
		d.ID = dev
		d.LastSeen = l.now()
		if err := l.Store.UpsertDevice(ctx, &d); err != nil {
			return nil, err
		}
	}
	token, err := l.Sessions.Mint(ctx, sess)
	if err != nil {
		return nil, err
	}
	audit.Outcome, audit.Actor = OutcomeSuccess, sess.Subject
	audit.Details["session"] = sess.ID
	l.Record(ctx, audit)
	return &LoginResult{Token: token, Session: sess}, nil
}

// runsArgon2 reports whether answering this login runs Argon2: a passcode,
// and every refusal made to cost the same (malformed input, an unknown
// method, a mode that is off or not allowed from src, a certificate
// login without a valid certificate). Such an attempt is a guess for the
// throttle.
func (l *Login) runsArgon2(malformed bool, method string, sec Security, src string, certID *cert.Identity) bool {
	if malformed {
		return true
	}
	switch method {
	case MethodAnonymous:
		return !sec.Anonymous || !sec.AnonymousAllowedFrom(src)
	case MethodEntra:
		return sec.Entra == nil
	case MethodCertificate:
		return certID == nil
	}
	return true // passcode, empty or unknown
}

// checkPasscode runs Argon2 (the caller has admitted the attempt through
// the throttle and counts its outcome).
func (l *Login) checkPasscode(ctx context.Context, passcode string, sess *deploy.Session) error {
	gen, err := l.Passcodes.Check(ctx, passcode)
	if deploy.ErrorKind(err) == deploy.KindThrottled {
		return err
	}
	if err != nil {
		return errAuthFailed
	}
	sess.Generation = gen
	return nil
}

func (l *Login) checkAnonymous(ctx context.Context, sec Security, src string, audit *deploy.AuditEvent) error {
	if !sec.Anonymous {
		return l.Passcodes.Refuse(ctx, "")
	}
	if !sec.AnonymousAllowedFrom(src) {
		audit.Details["reason"] = "anonymous not allowed from this address"
		return l.Passcodes.Refuse(ctx, "")
	}
	return nil
}

func (l *Login) checkEntra(ctx context.Context, sec Security, token string, sess *deploy.Session, audit *deploy.AuditEvent) error {
	if sec.Entra == nil {
		return l.Passcodes.Refuse(ctx, "")
	}
	id, err := l.entraValidator(*sec.Entra).Validate(ctx, token)
	if err != nil {
		if rej, ok := accesstoken.AsReject(err); ok {
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

// entraValidator is the validator (and its JWKS cache) of cfg, made anew
// when the settings changed so a change takes effect at the next login.
func (l *Login) entraValidator(cfg entra.Config) *accesstoken.Validator {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entraCheck == nil || l.entraCfg != cfg {
		l.entraCfg, l.entraCheck = cfg, accesstoken.NewValidator(cfg, l.EntraHTTP)
	}
	return l.entraCheck
}

// checkCertificate accepts the identity the TLS handshake verified (nil:
// no valid client certificate, refused after the same work as a wrong
// passcode).
func (l *Login) checkCertificate(ctx context.Context, id *cert.Identity, sess *deploy.Session) error {
	if id == nil {
		return l.Passcodes.Refuse(ctx, "")
	}
	sess.Subject = id.Subject
	return nil
}
