package accesstoken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = time.Minute

// RejectedMessage is the one caller-safe message for every rejected token.
const RejectedMessage = "Entra ID token rejected"

// maxTokenBytes bounds the raw token; Entra access tokens are a few KiB.
const maxTokenBytes = 16 << 10

// Reasons a token is rejected; stable strings for the audit log.
const (
	ReasonMalformed   = "malformed"
	ReasonAlgorithm   = "algorithm"
	ReasonUnknownKey  = "unknown_key"
	ReasonSignature   = "signature"
	ReasonIssuer      = "issuer"
	ReasonAudience    = "audience"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not_yet_valid"
	ReasonTenant      = "tenant"
	ReasonVersion     = "version"
	ReasonClaims      = "claims"
	ReasonMissingRole = "missing_role"
)

// RejectError is the log-only detail of a rejected token, reachable with
// errors.As from the *deploy.Error that Validate returns.
type RejectError struct {
	Reason string // one of the Reason* constants
	Err    error  // the specific cause
}

func (e *RejectError) Error() string { return "entra token " + e.Reason + ": " + e.Err.Error() }
func (e *RejectError) Unwrap() error { return e.Err }

func reject(reason string, err error) error {
	return deploy.Wrap(deploy.KindUnauthorized, &RejectError{Reason: reason, Err: err}, RejectedMessage)
}

// Identity is the authenticated user of a validated token. ObjectID with
// TenantID is the stable key; Name and UPN are for display and audit only.
type Identity struct {
	Subject  string
	ObjectID string
	Name     string
	UPN      string
	TenantID string
	Roles    []string
}

// Validator checks Entra ID access tokens for one tenant. It is safe for
// concurrent use.
type Validator struct {
	// Now is the clock for exp/nbf/iat and the JWKS refetch interval.
	Now func() time.Time

	cfg  entra.Config
	keys *keySet
}

// NewValidator returns a Validator for cfg; call cfg.Validate first. A nil
// httpClient means http.DefaultClient.
func NewValidator(cfg entra.Config, httpClient *http.Client) *Validator {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	v := &Validator{Now: time.Now, cfg: cfg}
	v.keys = &keySet{
		url:        cfg.JWKSURL(),
		client:     httpClient,
		minRefetch: cfg.RefetchInterval(),
		now:        func() time.Time { return v.Now() },
	}
	return v
}

type claims struct {
	jwt.RegisteredClaims
	TenantID          string   `json:"tid"`
	ObjectID          string   `json:"oid"`
	Name              string   `json:"name"`
	UPN               string   `json:"upn"`
	PreferredUsername string   `json:"preferred_username"`
	Roles             []string `json:"roles"`
	Version           string   `json:"ver"`
}

// Validate checks rawToken and returns the caller's identity. Every failure
// is a deploy.KindUnauthorized error with the message RejectedMessage; the
// reason is in a *RejectError for the audit log.
func (v *Validator) Validate(ctx context.Context, rawToken string) (*Identity, error) {
	if rawToken == "" {
		return nil, reject(ReasonMalformed, errors.New("empty token"))
	}
	if len(rawToken) > maxTokenBytes {
		return nil, reject(ReasonMalformed, fmt.Errorf("token of %d bytes exceeds %d", len(rawToken), maxTokenBytes))
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithIssuer(v.cfg.Issuer()),
		jwt.WithAudience(v.cfg.AcceptedAudience()),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(v.Now),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
	)
	var c claims
	var keyErr error
	_, err := p.ParseWithClaims(rawToken, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			keyErr = errors.New("token header has no kid")
			return nil, keyErr
		}
		k, err := v.keys.key(ctx, kid)
		if err != nil {
			keyErr = fmt.Errorf("kid %q: %w", kid, err)
			return nil, keyErr
		}
		return k, nil
	})
	if err != nil {
		return nil, reject(classify(err, keyErr), err)
	}
	// The issuer pin makes this a v2.0 token; tid must name our tenant too.
	if !strings.EqualFold(c.TenantID, v.cfg.Tenant()) {
		return nil, reject(ReasonTenant, fmt.Errorf("tid %q is not the configured tenant", c.TenantID))
	}
	if c.Version != "" && c.Version != "2.0" {
		return nil, reject(ReasonVersion, fmt.Errorf("ver %q is not 2.0", c.Version))
	}
	if c.ObjectID == "" {
		return nil, reject(ReasonClaims, errors.New("token has no oid claim"))
	}
	if r := v.cfg.RequiredRole; r != "" && !slices.Contains(c.Roles, r) {
		// The token is genuine and ours; the user is just not allowed.
		// That is 403, not 401, and the message says what to ask for.
		return nil, deploy.Wrap(deploy.KindForbidden,
			&RejectError{Reason: ReasonMissingRole, Err: fmt.Errorf("roles %q lack the required role %q", c.Roles, r)},
			fmt.Sprintf("%s: the account is not assigned the app role %q that this server requires; ask an administrator to assign it", RejectedMessage, r))
	}
	upn := c.UPN
	if upn == "" {
		upn = c.PreferredUsername
	}
	return &Identity{
		Subject:  c.Subject,
		ObjectID: c.ObjectID,
		Name:     c.Name,
		UPN:      upn,
		TenantID: c.TenantID,
		Roles:    c.Roles,
	}, nil
}

func classify(err, keyErr error) string {
	switch {
	case keyErr != nil:
		return ReasonUnknownKey
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		return ReasonAlgorithm
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ReasonAlgorithm // alg unknown to the library
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ReasonSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonAudience
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformed
	}
	return ReasonClaims
}

// AsReject returns the reason of the *RejectError in err's chain.
func AsReject(err error) (reason string, ok bool) {
	var rej *RejectError
	if errors.As(err, &rej) {
		return rej.Reason, true
	}
	return "", false
}
