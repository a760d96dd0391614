package auth

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// AdminTokenPrefix starts every admin token, so that secret scanners and
// people can tell one from a machine session token at a glance.
const AdminTokenPrefix = "imprint_admin_"

// adminTokensKey is the setting that holds the list of admin tokens.
const adminTokensKey = "admin.tokens"

// maxAdminTokens bounds the list (live and revoked together) so it stays a
// small setting; revoked tokens past the bound are dropped, oldest first.
const maxAdminTokens = 200

// AdminToken is a credential for the admin API over HTTPS (remote
// administration). Only the SHA-256 of the token is stored.
type AdminToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	SHA256     string     `json:"sha256,omitempty"` // hex; never sent to clients
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
}

// Live reports whether t authenticates at now.
func (t *AdminToken) Live(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// AdminTokens creates, lists, revokes and checks admin tokens, kept in one
// setting of the store. Tokens are minted only over the admin socket (the
// server enforces that), so holding one never lets anybody mint another.
type AdminTokens struct {
	Store deploy.Store
	Now   func() time.Time
}

func (m *AdminTokens) now() time.Time {
	if m.Now == nil {
		return time.Now().UTC()
	}
	return m.Now().UTC()
}

func (m *AdminTokens) load(ctx context.Context) ([]*AdminToken, error) {
	b, err := m.Store.Setting(ctx, adminTokensKey)
	if deploy.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin tokens: %w", err)
	}
	var ts []*AdminToken
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, fmt.Errorf("admin tokens: stored list is damaged: %w", err)
	}
	return ts, nil
}

// update applies change to the stored list in one store transaction
// (Store.UpdateSetting), so that replicas minting or revoking tokens at
// once lose nothing. change may run more than once and must only compute;
// its error is returned as it is.
func (m *AdminTokens) update(ctx context.Context, change func([]*AdminToken) ([]*AdminToken, error)) error {
	var changeErr error
	err := m.Store.UpdateSetting(ctx, adminTokensKey, func(old []byte) ([]byte, error) {
		var ts []*AdminToken
		if old != nil {
			if err := json.Unmarshal(old, &ts); err != nil {
				return nil, deploy.Wrap(deploy.KindInternal, err, "stored list is damaged")
			}
		}
		if ts, changeErr = change(ts); changeErr != nil {
			return nil, changeErr
		}
		return json.Marshal(ts)
	})
	if err != nil && (changeErr == nil || !errors.Is(err, changeErr)) {
		return fmt.Errorf("admin tokens: %w", err)
	}
	return err
}

// checkName allows short printable names, so they read well in the audit
// log and in `imprint token list`.
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return deploy.Errorf(deploy.KindInvalid, "token name must be 1 to 64 characters")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) && r != ' ' {
			return deploy.Errorf(deploy.KindInvalid, "token name %q has a character that is not printable", name)
		}
	}
	return nil
}

// Create mints a token named name, valid for ttl (0: until revoked), and
// returns it; the token itself is shown this once and not stored. Names are
// unique among live tokens.
func (m *AdminTokens) Create(ctx context.Context, name string, ttl time.Duration) (string, *AdminToken, error) {
	name = strings.TrimSpace(name)
	if err := checkName(name); err != nil {
		return "", nil, err
	}
	if ttl < 0 {
		return "", nil, deploy.Errorf(deploy.KindInvalid, "token lifetime %s is negative", ttl)
	}
	secret, _, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	token := AdminTokenPrefix + secret
	now := m.now()
	t := &AdminToken{ID: newID(), Name: name, SHA256: hex.EncodeToString(HashToken(token)), CreatedAt: now}
	if ttl > 0 {
		exp := now.Add(ttl)
		t.ExpiresAt = &exp
	}
	err = m.update(ctx, func(ts []*AdminToken) ([]*AdminToken, error) {
		for _, o := range ts {
			if o.Name == name && o.Live(now) {
				return nil, deploy.Errorf(deploy.KindConflict, "a live admin token named %q exists (id %s); revoke it first or choose another name", name, o.ID)
			}
		}
		return prune(append(ts, t), now), nil
	})
	if err != nil {
		return "", nil, err
	}
	return token, t.public(), nil
}

// prune drops the oldest dead tokens once the list passes maxAdminTokens.
func prune(ts []*AdminToken, now time.Time) []*AdminToken {
	for i := 0; len(ts) > maxAdminTokens && i < len(ts); {
		if !ts[i].Live(now) {
			ts = append(ts[:i], ts[i+1:]...)
			continue
		}
		i++
	}
	return ts
}

// public is t without its hash.
func (t *AdminToken) public() *AdminToken {
	c := *t
	c.SHA256 = ""
	return &c
}

// List returns every token, live or not, without hashes, oldest first.
func (m *AdminTokens) List(ctx context.Context) ([]*AdminToken, error) {
	ts, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*AdminToken, len(ts))
	for i, t := range ts {
		out[i] = t.public()
	}
	return out, nil
}

// Revoke ends the live token whose id or name is ref and returns it.
func (m *AdminTokens) Revoke(ctx context.Context, ref string) (*AdminToken, error) {
	ref = strings.TrimSpace(ref)
	now := m.now()
	var revoked *AdminToken
	err := m.update(ctx, func(ts []*AdminToken) ([]*AdminToken, error) {
		for _, t := range ts {
			if (t.ID == ref || t.Name == ref) && t.Live(now) {
				t.RevokedAt = &now
				revoked = t.public()
				return ts, nil
			}
		}
		return nil, deploy.Errorf(deploy.KindNotFound, "no live admin token with id or name %q", ref)
	})
	if err != nil {
		return nil, err
	}
	return revoked, nil
}

// errAdminToken is the one answer for a token that does not authenticate.
func errAdminToken() error {
	return deploy.Errorf(deploy.KindUnauthorized, "admin token is invalid, expired or revoked")
}

// Authenticate returns the live token matching token. Unknown, malformed,
// expired and revoked tokens all get the same KindUnauthorized error; a
// machine session token is never an admin token. LastUsedAt is written at
// most once a minute.
func (m *AdminTokens) Authenticate(ctx context.Context, token string) (*AdminToken, error) {
	secret, ok := strings.CutPrefix(token, AdminTokenPrefix)
	if !ok || !wellFormedToken(secret) {
		return nil, errAdminToken()
	}
	want := []byte(hex.EncodeToString(HashToken(token)))
	ts, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	for _, t := range ts {
		if subtle.ConstantTimeCompare([]byte(t.SHA256), want) != 1 {
			continue
		}
		if !t.Live(now) {
			return nil, errAdminToken()
		}
		if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= touchEvery {
			t.LastUsedAt = &now
			// Touch only this token's LastUsedAt in the list as stored
			// now: a token minted or revoked meanwhile stays as it is.
			err := m.update(ctx, func(ts []*AdminToken) ([]*AdminToken, error) {
				for _, s := range ts {
					if s.ID == t.ID {
						s.LastUsedAt = &now
					}
				}
				return ts, nil
			})
			if err != nil {
				return nil, err
			}
		}
		return t.public(), nil
	}
	return nil, errAdminToken()
}
