package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
)

func TestAdminTokens(t *testing.T) {
	clock := newClock()
	db, dir := openStore(t, clock)
	m := &auth.AdminTokens{Store: db, Now: clock.Now}
	ctx := t.Context()

	tok, created, err := m.Create(ctx, "ci pipeline", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, auth.AdminTokenPrefix) || created.SHA256 != "" || created.ExpiresAt != nil {
		t.Fatalf("Create = %q, %+v; want a prefixed token, no hash shown, no expiry", tok, created)
	}
	got, err := m.Authenticate(ctx, tok)
	if err != nil || got.ID != created.ID || got.LastUsedAt == nil {
		t.Fatalf("Authenticate = %+v, %v; want token %s with its use recorded", got, err, created.ID)
	}

	// Names are unique among live tokens.
	if _, _, err := m.Create(ctx, "ci pipeline", 0); deploy.ErrorKind(err) != deploy.KindConflict {
		t.Errorf("second live token of one name: err = %v, want conflict", err)
	}
	for _, bad := range []string{"", strings.Repeat("x", 65), "tab\there", "two\nlines"} {
		if _, _, err := m.Create(ctx, bad, 0); deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("Create(%q): err = %v, want invalid", bad, err)
		}
	}

	// Every kind of wrong token gets the same answer.
	session, _, _ := auth.NewToken()
	i := len(auth.AdminTokenPrefix) + 5
	changed := tok[:i] + map[bool]string{true: "B", false: "A"}[tok[i] == 'A'] + tok[i+1:]
	wrongs := map[string]string{
		"empty":         "",
		"session token": session,
		"no prefix":     strings.TrimPrefix(tok, auth.AdminTokenPrefix),
		"one changed":   changed,
		"too long":      tok + "A",
	}
	for name, w := range wrongs {
		_, err := m.Authenticate(ctx, w)
		if deploy.ErrorKind(err) != deploy.KindUnauthorized || deploy.ErrorMessage(err) != "admin token is invalid, expired or revoked" {
			t.Errorf("%s: err = %v, want the one unauthorized answer", name, err)
		}
	}

	// Expiry.
	short, st, err := m.Create(ctx, "laptop", time.Hour)
	if err != nil || st.ExpiresAt == nil || !st.ExpiresAt.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("Create with ttl = %+v, %v", st, err)
	}
	if _, err := m.Authenticate(ctx, short); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	clock.Advance(time.Hour)
	if _, err := m.Authenticate(ctx, short); deploy.ErrorKind(err) != deploy.KindUnauthorized {
		t.Errorf("expired token: err = %v, want unauthorized", err)
	}
	// An expired name can be reused.
	if _, _, err := m.Create(ctx, "laptop", 0); err != nil {
		t.Errorf("reuse of an expired token's name: %v", err)
	}

	// Revocation by name, then by id; a second revocation finds nothing.
	if r, err := m.Revoke(ctx, "ci pipeline"); err != nil || r.RevokedAt == nil {
		t.Fatalf("Revoke = %+v, %v", r, err)
	}
	if _, err := m.Authenticate(ctx, tok); deploy.ErrorKind(err) != deploy.KindUnauthorized {
		t.Errorf("revoked token: err = %v, want unauthorized", err)
	}
	if _, err := m.Revoke(ctx, created.ID); deploy.ErrorKind(err) != deploy.KindNotFound {
		t.Errorf("revoking twice: err = %v, want not found", err)
	}

	list, err := m.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("List = %d tokens, %v; want 3", len(list), err)
	}
	for _, lt := range list {
		if lt.SHA256 != "" {
			t.Errorf("List shows the hash of %s", lt.Name)
		}
	}

	// Neither token is anywhere in the data directory.
	db.Close()
	for _, secret := range []string{tok, short} {
		grepTree(t, dir, strings.TrimPrefix(secret, auth.AdminTokenPrefix))
	}
}

func TestAdminTokensKeepTheListBounded(t *testing.T) {
	clock := newClock()
	db, _ := openStore(t, clock)
	m := &auth.AdminTokens{Store: db, Now: clock.Now}
	ctx := t.Context()
	live, _, err := m.Create(ctx, "keep", 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 250 {
		if _, _, err := m.Create(ctx, "churn", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Revoke(ctx, "churn"); err != nil {
			t.Fatal(err)
		}
	}
	list, err := m.List(ctx)
	if err != nil || len(list) > 200 {
		t.Fatalf("List = %d tokens, %v; want at most 200", len(list), err)
	}
	if _, err := m.Authenticate(ctx, live); err != nil {
		t.Errorf("the live token was pruned: %v", err)
	}
}
