package auth_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

func openStore(t *testing.T, clock *fakeClock) (*sqlite.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Now = clock.Now
	t.Cleanup(func() { db.Close() })
	return db, dir
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, hash, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil || len(raw) != 32 {
			t.Fatalf("token %q: %d bytes, %v; want 32 bytes of base64url", tok, len(raw), err)
		}
		if sum := sha256.Sum256([]byte(tok)); !bytes.Equal(sum[:], hash) {
			t.Fatal("hash is not SHA-256 of the token")
		}
		if seen[tok] {
			t.Fatal("token repeated")
		}
		seen[tok] = true
	}
}

func newSessions(t *testing.T, clock *fakeClock) (*auth.Sessions, *sqlite.DB) {
	t.Helper()
	m, db, _ := newSessionsDir(t, clock)
	return m, db
}

func newSessionsDir(t *testing.T, clock *fakeClock) (*auth.Sessions, *sqlite.DB, string) {
	t.Helper()
	db, dir := openStore(t, clock)
	return &auth.Sessions{Store: db, Now: clock.Now, Idle: 30 * time.Minute, Absolute: 2 * time.Hour}, db, dir
}

func mint(t *testing.T, m *auth.Sessions, s *deploy.Session) string {
	t.Helper()
	tok, err := m.Mint(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantUnauthorized(t *testing.T, s *deploy.Session, err error) {
	t.Helper()
	if s != nil || deploy.ErrorKind(err) != deploy.KindUnauthorized {
		t.Fatalf("Authenticate = %v, %v; want unauthorized", s, err)
	}
	if want := "session is invalid or expired; authenticate again"; deploy.ErrorMessage(err) != want {
		t.Errorf("message %q, want %q (the same for every failure)", deploy.ErrorMessage(err), want)
	}
}

func TestSessionMintAndAuthenticate(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	m, _, dir := newSessionsDir(t, clock)
	s := &deploy.Session{Method: auth.MethodPasscode, Generation: 3, DeviceID: "dev-1", Source: "192.0.2.1"}
	tok := mint(t, m, s)
	if s.ID == "" || len(s.TokenHash) != 32 || !s.ExpiresAt.Equal(clock.Now().Add(2*time.Hour)) {
		t.Fatalf("minted session not filled in: %+v", s)
	}
	got, err := m.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != s.ID || got.Generation != 3 || got.DeviceID != "dev-1" {
		t.Errorf("Authenticate = %+v", got)
	}
	// The raw token is nowhere in the database files (db, -wal, -shm).
	grepTree(t, dir, tok)
	// Bad inputs all look the same.
	for _, bad := range []string{"", "x", tok + "A", strings.Repeat(".", 1<<16), tok[:42] + "!"} {
		s, err := m.Authenticate(ctx, bad)
		wantUnauthorized(t, s, err)
	}
	other, _, _ := auth.NewToken()
	s2, err := m.Authenticate(ctx, other)
	wantUnauthorized(t, s2, err)
}

func TestSessionMintRejects(t *testing.T) {
	m, _ := newSessions(t, newClock())
	for name, s := range map[string]*deploy.Session{
		"nil":                     nil,
		"no method":               {DeviceID: "d"},
		"unknown method":          {Method: "kerberos"},
		"passcode, no generation": {Method: auth.MethodPasscode},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := m.Mint(t.Context(), s); deploy.ErrorKind(err) != deploy.KindInvalid {
				t.Errorf("err = %v, want invalid", err)
			}
		})
	}
}

func TestSessionExpiry(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	m, db := newSessions(t, clock)

	// Idle: used every 20 minutes it lives; 30 minutes unused kills it.
	tok := mint(t, m, &deploy.Session{Method: auth.MethodAnonymous})
	for range 5 {
		clock.Advance(20 * time.Minute)
		if _, err := m.Authenticate(ctx, tok); err != nil {
			t.Fatalf("at %s: %v", clock.Now(), err)
		}
	}
	clock.Advance(30 * time.Minute)
	s, err := m.Authenticate(ctx, tok)
	wantUnauthorized(t, s, err)

	// Absolute: even in constant use it ends at CreatedAt+2h.
	start := clock.Now()
	tok = mint(t, m, &deploy.Session{Method: auth.MethodAnonymous})
	for clock.Now().Before(start.Add(2*time.Hour - 10*time.Minute)) {
		clock.Advance(10 * time.Minute)
		if _, err := m.Authenticate(ctx, tok); err != nil {
			t.Fatalf("at +%s: %v", clock.Now().Sub(start), err)
		}
	}
	clock.Advance(10 * time.Minute) // exactly the absolute limit
	s, err = m.Authenticate(ctx, tok)
	wantUnauthorized(t, s, err)

	// LastUsedAt is written at most once a minute.
	tok = mint(t, m, &deploy.Session{Method: auth.MethodAnonymous})
	created := clock.Now()
	clock.Advance(30 * time.Second)
	got, err := m.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := db.SessionByTokenHash(ctx, auth.HashToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if !stored.LastUsedAt.Equal(created) || !got.LastUsedAt.Equal(created) {
		t.Errorf("LastUsedAt written after 30s: %s", stored.LastUsedAt)
	}
	clock.Advance(31 * time.Second)
	if _, err := m.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	stored, _ = db.SessionByTokenHash(ctx, auth.HashToken(tok))
	if !stored.LastUsedAt.Equal(clock.Now()) {
		t.Errorf("LastUsedAt = %s after 61s, want %s", stored.LastUsedAt, clock.Now())
	}
}

func TestSessionBind(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	m, _ := newSessions(t, clock)
	tok := mint(t, m, &deploy.Session{Method: auth.MethodEntra, Subject: "tech@example.com"})
	s, err := m.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Bind(ctx, s, ""); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("Bind(\"\") err = %v, want invalid", err)
	}
	if err := m.Bind(ctx, s, "ts-a"); err != nil {
		t.Fatal(err)
	}
	if err := m.Bind(ctx, s, "ts-a"); err != nil {
		t.Errorf("Bind same again: %v", err)
	}
	s, _ = m.Authenticate(ctx, tok)
	if s.TaskSequenceID != "ts-a" {
		t.Fatalf("binding not stored: %+v", s)
	}
	if err := m.Bind(ctx, s, "ts-b"); deploy.ErrorKind(err) != deploy.KindConflict {
		t.Errorf("rebinding err = %v, want conflict", err)
	}
}

func TestSessionRevoke(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	m, _ := newSessions(t, clock)
	a := &deploy.Session{Method: auth.MethodAnonymous}
	ta := mint(t, m, a)
	tb := mint(t, m, &deploy.Session{Method: auth.MethodAnonymous})
	if err := m.Revoke(ctx, ""); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Fatalf("Revoke(\"\") err = %v, want invalid", err)
	}
	if _, err := m.Authenticate(ctx, tb); err != nil {
		t.Fatalf("Revoke(\"\") touched another session: %v", err)
	}
	if err := m.Revoke(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	s, err := m.Authenticate(ctx, ta)
	wantUnauthorized(t, s, err)
	if _, err := m.Authenticate(ctx, tb); err != nil {
		t.Errorf("other session revoked too: %v", err)
	}
	if err := m.Revoke(ctx, a.ID); !deploy.IsNotFound(err) {
		t.Errorf("second Revoke err = %v, want not found", err)
	}
}

// TestEmergencyRotationKillsSessions wires Passcodes and Sessions on one
// SQLite store the way the server does: sessions minted from the old
// passcode die with a grace-0 rotation; sessions of the new one live.
func TestEmergencyRotationKillsSessions(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	m, db := newSessions(t, clock)
	p := newPasscodes(t, db, clock)
	if _, err := p.Set(ctx, canary); err != nil {
		t.Fatal(err)
	}
	login := func(passcode string) string {
		t.Helper()
		gen, err := p.Check(ctx, passcode)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return mint(t, m, &deploy.Session{Method: auth.MethodPasscode, Generation: gen, DeviceID: "d"})
	}
	old := login(canary)
	other := mint(t, m, &deploy.Session{Method: auth.MethodEntra})

	// A graceful rotation retires nothing.
	ch, err := p.Rotate(ctx, "Graceful-Narwhal-Piano-27", time.Hour)
	if err != nil || len(ch.Retired) != 0 {
		t.Fatalf("graceful Rotate = %+v, %v", ch, err)
	}
	if n, err := m.RevokeGenerations(ctx, ch.Retired); err != nil || n != 0 {
		t.Fatalf("RevokeGenerations(none) = %d, %v", n, err)
	}
	fresh := login("Graceful-Narwhal-Piano-27")

	ch, err = p.Rotate(ctx, "Emergency-Gecko-Mirror-91", 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := m.RevokeGenerations(ctx, ch.Retired)
	if err != nil || n != 2 {
		t.Fatalf("RevokeGenerations(%v) = %d, %v; want 2", ch.Retired, n, err)
	}
	for _, tok := range []string{old, fresh} {
		s, err := m.Authenticate(ctx, tok)
		wantUnauthorized(t, s, err)
	}
	if _, err := m.Authenticate(ctx, other); err != nil {
		t.Errorf("an Entra session died with the passcode: %v", err)
	}
	if _, err := m.RevokeGenerations(ctx, []int{0}); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("RevokeGenerations([0]) err = %v, want invalid", err)
	}
}
