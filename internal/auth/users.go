package auth

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Console passwords: longer than a passcode (nobody types them at a boot
// console, a password manager can fill them), same blocklist and checks.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// userNameRE is what a console account may be called: lower-case letters,
// digits and . _ - , starting with a letter or digit, at most 64.
var userNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// NormalizeUserName lower-cases a typed name, so Alice and alice are one
// account.
func NormalizeUserName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// CheckUserName returns a KindInvalid error unless name (normalised) is a
// valid account name.
func CheckUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return deploy.Errorf(deploy.KindInvalid, "user name %q: use 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// CheckPasswordPolicy returns a KindInvalid error naming what is wrong with
// a console password, or nil. The message never contains the password.
func CheckPasswordPolicy(p string) error {
	if !utf8.ValidString(p) {
		return deploy.Errorf(deploy.KindInvalid, "password is not valid UTF-8")
	}
	n := NormalizePasscode(p)
	runes := []rune(n)
	switch {
	case len(runes) < MinPasswordLen:
		return deploy.Errorf(deploy.KindInvalid, "password is too short: it needs at least %d characters, this one has %d", MinPasswordLen, len(runes))
	case len(runes) > MaxPasswordLen:
		return deploy.Errorf(deploy.KindInvalid, "password is too long: at most %d characters, this one has %d", MaxPasswordLen, len(runes))
	}
	for _, r := range runes {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return deploy.Errorf(deploy.KindInvalid, "password contains a control character (tab, newline or similar)")
		}
	}
	if shortPeriod(runes) || isSequence(strings.ToLower(n)) || blocked(n) {
		return deploy.Errorf(deploy.KindInvalid, "password is too common, a simple sequence or a short pattern repeated: choose another")
	}
	return nil
}

// Users manages console accounts: Argon2id hashes like the passcode, and
// a Check whose cost does not tell a wrong name from a wrong password.
type Users struct {
	store  deploy.Store
	params Argon2Params
	slots  chan struct{} // Argon2 evaluations at once
	dummy  phc
}

// NewUsers returns the service over store; params are those of the
// passcode (zero: the defaults).
func NewUsers(store deploy.Store, params Argon2Params) (*Users, error) {
	if params == (Argon2Params{}) {
		params = DefaultArgon2Params()
	}
	dummy, err := HashPasscode(string(randomBytes(32)), params)
	if err != nil {
		return nil, fmt.Errorf("users: dummy hash: %w", err)
	}
	h, err := parsePHC(dummy)
	if err != nil {
		return nil, fmt.Errorf("users: dummy hash: %w", err)
	}
	return &Users{store: store, params: params, slots: make(chan struct{}, 2), dummy: h}, nil
}

// Add creates an account after checking name, role and password policy.
func (u *Users) Add(ctx context.Context, name string, role deploy.Role, password string) (*deploy.User, error) {
	name = NormalizeUserName(name)
	if err := CheckUserName(name); err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, deploy.Errorf(deploy.KindInvalid, "role %q is not admin, operator or viewer", role)
	}
	if err := CheckPasswordPolicy(password); err != nil {
		return nil, err
	}
	hash, err := HashPasscode(password, u.params)
	if err != nil {
		return nil, err
	}
	usr := &deploy.User{Name: name, Role: role, PasswordHash: hash}
	if err := u.store.CreateUser(ctx, usr); err != nil {
		return nil, err
	}
	return usr, nil
}

// SetPassword replaces an account's password.
func (u *Users) SetPassword(ctx context.Context, name, password string) (*deploy.User, error) {
	usr, err := u.store.User(ctx, NormalizeUserName(name))
	if err != nil {
		return nil, err
	}
	if err := CheckPasswordPolicy(password); err != nil {
		return nil, err
	}
	if usr.PasswordHash, err = HashPasscode(password, u.params); err != nil {
		return nil, err
	}
	usr.UpdatedAt = time.Time{} // the store stamps it
	if err := u.store.UpdateUser(ctx, usr); err != nil {
		return nil, err
	}
	return usr, nil
}

// Remove deletes an account; the last admin cannot be removed while
// others remain, so the console is never left without one.
func (u *Users) Remove(ctx context.Context, name string) error {
	name = NormalizeUserName(name)
	usr, err := u.store.User(ctx, name)
	if err != nil {
		return err
	}
	if usr.Role == deploy.RoleAdmin {
		all, err := u.store.Users(ctx)
		if err != nil {
			return err
		}
		admins := 0
		for _, x := range all {
			if x.Role == deploy.RoleAdmin {
				admins++
			}
		}
		if admins == 1 && len(all) > 1 {
			return deploy.Errorf(deploy.KindConflict, "user %s is the last admin: add another admin first", name)
		}
	}
	return u.store.DeleteUser(ctx, name)
}

// List returns every account, by name.
func (u *Users) List(ctx context.Context) ([]*deploy.User, error) { return u.store.Users(ctx) }

// Any reports whether at least one account exists (the console's login
// page tells how to create the first one otherwise).
func (u *Users) Any(ctx context.Context) (bool, error) {
	all, err := u.store.Users(ctx)
	return len(all) > 0, err
}

// Check returns the account when name and password match, else
// ErrBadPasscode ("authentication failed") after the same Argon2 work: an
// unknown name is checked against a dummy hash. The caller throttles.
func (u *Users) Check(ctx context.Context, name, password string) (*deploy.User, error) {
	select {
	case u.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-u.slots }()
	name = NormalizeUserName(name)
	usr, err := u.store.User(ctx, name)
	if err != nil && !deploy.IsNotFound(err) {
		return nil, err
	}
	if len(password) > MaxPasswordLen*4 || !utf8.ValidString(password) {
		password = ""
	}
	h := u.dummy
	if usr != nil {
		if h, err = parsePHC(usr.PasswordHash); err != nil {
			h, usr = u.dummy, nil
		}
	}
	ok := h.verify(NormalizePasscode(password))
	if !ok || usr == nil || password == "" {
		return nil, ErrBadPasscode
	}
	return usr, nil
}
