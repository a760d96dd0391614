package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Session lifetimes (security.md §3.2): the idle limit is refreshed by
// use, the absolute limit never is.
const (
	DefaultIdle     = time.Hour
	DefaultAbsolute = 12 * time.Hour
	// touchEvery limits LastUsedAt writes to one per session per minute, so
	// the effective idle limit may be up to a minute shorter than Idle.
	touchEvery = time.Minute
	tokenBytes = 32
)

// Session methods, as stored in deploy.Session.Method.
const (
	MethodAnonymous   = "anonymous"
	MethodCertificate = "certificate"
	MethodEntra       = "entra"
	MethodPasscode    = "passcode"
)

// NewToken returns a new bearer token (32 random bytes, base64url without
// padding: 256 bits) and the SHA-256 that is stored in its place.
func NewToken() (token string, hash []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("new token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken returns the SHA-256 of a bearer token, as stored.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// wellFormedToken reports whether token could have come from NewToken.
// The decoded length is checked too: base64 skips newlines, so a string
// of the right length with some in it decodes to fewer bytes.
func wellFormedToken(token string) bool {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil && len(b) == tokenBytes
}

// errSession is the one answer for a token that does not authenticate:
// unknown, revoked, idle or past its absolute expiry.
func errSession() error {
	return deploy.Errorf(deploy.KindUnauthorized, "session is invalid or expired; authenticate again")
}

// Sessions mints and checks the opaque session tokens every
// authentication mode ends in. Zero Idle and Absolute take DefaultIdle and
// DefaultAbsolute; a nil Now is time.Now.
type Sessions struct {
	Store    deploy.Store
	Now      func() time.Time
	Idle     time.Duration
	Absolute time.Duration
}

func (m *Sessions) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func (m *Sessions) idle() time.Duration     { return cmpOr(m.Idle, DefaultIdle) }
func (m *Sessions) absolute() time.Duration { return cmpOr(m.Absolute, DefaultAbsolute) }

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Mint stores s as a new session and returns its bearer token, shown to
// the client once. It fills s.ID (a random UUID), TokenHash, CreatedAt,
// LastUsedAt and ExpiresAt (now + Absolute); the caller fills Method,
// DeviceID, Source, Subject and (for passcode) Generation.
func (m *Sessions) Mint(ctx context.Context, s *deploy.Session) (string, error) {
	if s == nil {
		return "", deploy.Errorf(deploy.KindInvalid, "mint session: session is missing")
	}
	switch s.Method {
	case MethodAnonymous, MethodCertificate, MethodEntra:
	case MethodPasscode:
		if s.Generation <= 0 {
			return "", deploy.Errorf(deploy.KindInvalid, "mint session: a passcode session needs the passcode generation")
		}
	default:
		return "", deploy.Errorf(deploy.KindInvalid, "mint session: unknown method %q (want anonymous, certificate, entra or passcode)", s.Method)
	}
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	now := m.now().UTC()
	s.ID = newID()
	s.TokenHash = hash
	s.CreatedAt, s.LastUsedAt = now, now
	s.ExpiresAt = now.Add(m.absolute())
	s.RevokedAt = nil
	if err := m.Store.CreateSession(ctx, s); err != nil {
		return "", fmt.Errorf("mint session: %w", err)
	}
	return token, nil
}

// Authenticate returns the live session for a bearer token. Unknown,
// malformed, revoked, idle-expired and absolute-expired tokens all get the
// same KindUnauthorized error. LastUsedAt is written at most once a minute.
func (m *Sessions) Authenticate(ctx context.Context, token string) (*deploy.Session, error) {
	if !wellFormedToken(token) {
		return nil, errSession()
	}
	s, err := m.Store.SessionByTokenHash(ctx, HashToken(token))
	if deploy.IsNotFound(err) {
		return nil, errSession()
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate session: %w", err)
	}
	now := m.now()
	switch {
	case s.RevokedAt != nil,
		!now.Before(s.ExpiresAt),
		now.Sub(s.LastUsedAt) >= m.idle():
		return nil, errSession()
	}
	if now.Sub(s.LastUsedAt) >= touchEvery {
		s.LastUsedAt = now.UTC()
		if err := m.Store.UpdateSession(ctx, s); err != nil {
			return nil, fmt.Errorf("authenticate session: record use: %w", err)
		}
	}
	return s, nil
}

// Bind ties a session to the task sequence it runs. Binding again to the
// same sequence is a no-op; to another one is KindConflict.
func (m *Sessions) Bind(ctx context.Context, s *deploy.Session, taskSequenceID string) error {
	if taskSequenceID == "" {
		return deploy.Errorf(deploy.KindInvalid, "bind session: task sequence id is empty")
	}
	switch s.TaskSequenceID {
	case taskSequenceID:
		return nil
	case "":
	default:
		return deploy.Errorf(deploy.KindConflict, "session is already bound to task sequence %s", s.TaskSequenceID)
	}
	s.TaskSequenceID = taskSequenceID
	if err := m.Store.UpdateSession(ctx, s); err != nil {
		s.TaskSequenceID = ""
		return fmt.Errorf("bind session: %w", err)
	}
	return nil
}

// Revoke revokes one session by id; an unknown or already revoked id is
// KindNotFound.
func (m *Sessions) Revoke(ctx context.Context, id string) error {
	if id == "" {
		// A zero filter would match every session.
		return deploy.Errorf(deploy.KindInvalid, "revoke session: id is empty")
	}
	n, err := m.Store.RevokeSessions(ctx, deploy.SessionFilter{ID: id}, m.now())
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if n == 0 {
		return deploy.Errorf(deploy.KindNotFound, "no live session %s", id)
	}
	return nil
}

// ExpireWithin brings s's absolute expiry forward to at most d from now,
// for a session whose work is done but for a last upload (a finished
// run's logs). It never extends a session.
func (m *Sessions) ExpireWithin(ctx context.Context, s *deploy.Session, d time.Duration) error {
	end := m.now().UTC().Add(d)
	if !end.Before(s.ExpiresAt) {
		return nil
	}
	s.ExpiresAt = end
	if err := m.Store.UpdateSession(ctx, s); err != nil {
		return fmt.Errorf("expire session: %w", err)
	}
	return nil
}

// RevokeGenerations revokes every live session minted by the given
// passcode generations (PasscodeChange.Retired) and returns how many.
func (m *Sessions) RevokeGenerations(ctx context.Context, generations []int) (int, error) {
	total := 0
	for _, g := range generations {
		if g <= 0 {
			return total, deploy.Errorf(deploy.KindInvalid, "revoke sessions: passcode generation %d is not positive", g)
		}
		n, err := m.Store.RevokeSessions(ctx, deploy.SessionFilter{Method: MethodPasscode, Generation: g}, m.now())
		total += n
		if err != nil {
			return total, fmt.Errorf("revoke sessions of passcode generation %d: %w", g, err)
		}
	}
	return total, nil
}
