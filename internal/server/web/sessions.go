package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// sessionCookie carries the session token. The __Host- prefix makes the
// browser refuse it unless Secure, Path=/ and without Domain, so no other
// host or path can plant one.
const sessionCookie = "__Host-imprint_session"

// loginCookie carries the login form's CSRF token before any session
// exists (double submit: cookie and hidden field must agree).
const loginCookie = "__Host-imprint_login"

// session is one logged-in browser.
type session struct {
	id       string // for audit: a hash prefix, never the token
	user     string
	role     deploy.Role
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// sessions is the in-memory session table, keyed by the SHA-256 of the
// token so that the table itself holds nothing a cookie can be made from.
type sessions struct {
	mu       sync.Mutex
	byHash   map[[32]byte]*session
	idle     time.Duration
	absolute time.Duration
	now      func() time.Time
}

func newSessions(idle, absolute time.Duration, now func() time.Time) *sessions {
	return &sessions{byHash: map[[32]byte]*session{}, idle: idle, absolute: absolute, now: now}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics on a broken source)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create mints a new session for user: always a fresh token, so a token
// planted before login is worthless after it (no fixation).
func (s *sessions) create(user string, role deploy.Role) (token string, sess *session) {
	token = randomToken()
	h := sha256.Sum256([]byte(token))
	now := s.now()
	sess = &session{id: base64.RawURLEncoding.EncodeToString(h[:6]), user: user, role: role,
		csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	s.byHash[h] = sess
	return token, sess
}

// get returns the live session of token and marks it used; an idle or
// too old session is removed and not returned.
func (s *sessions) get(token string) *session {
	if token == "" {
		return nil
	}
	h := sha256.Sum256([]byte(token))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byHash[h]
	if !ok {
		return nil
	}
	if now.Sub(sess.lastSeen) > s.idle || now.Sub(sess.created) > s.absolute {
		delete(s.byHash, h)
		return nil
	}
	sess.lastSeen = now
	cp := *sess
	return &cp
}

// remove ends the session of token.
func (s *sessions) remove(token string) {
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byHash, h)
}

// removeUser ends every session of user (password changed, account
// removed).
func (s *sessions) removeUser(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for h, sess := range s.byHash {
		if sess.user == user {
			delete(s.byHash, h)
			n++
		}
	}
	return n
}

func (s *sessions) sweepLocked(now time.Time) {
	for h, sess := range s.byHash {
		if now.Sub(sess.lastSeen) > s.idle || now.Sub(sess.created) > s.absolute {
			delete(s.byHash, h)
		}
	}
}

// sameToken compares two CSRF tokens in constant time; empty never
// matches.
func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
