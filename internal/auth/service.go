package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// SettingsStore is the part of deploy.Store the passcode service uses.
type SettingsStore interface {
	Setting(ctx context.Context, key string) ([]byte, error) // KindNotFound if unset
	PutSetting(ctx context.Context, key string, value []byte) error
	DeleteSetting(ctx context.Context, key string) error
	// UpdateSetting changes key in one transaction; see deploy.Store.
	UpdateSetting(ctx context.Context, key string, fn func(old []byte) ([]byte, error)) error
}

var _ SettingsStore = deploy.Store(nil)

// PasscodeSettingKey is the settings key holding the passcode state (hashes
// only).
const PasscodeSettingKey = "auth.passcode"

// ErrBadPasscode is the one answer to a wrong passcode, malformed input, no
// passcode set and passcode mode off: the HTTP layer maps it to 401 with
// the same body in every case.
var ErrBadPasscode error = deploy.Errorf(deploy.KindUnauthorized, "authentication failed")

// ErrBusy is returned by Check when too many callers already wait for a
// hash evaluation; the server answers 429 (or 503) without evaluating.
var ErrBusy error = deploy.Errorf(deploy.KindThrottled, "too many authentication attempts in progress, try again shortly")

// PasscodeConfig tunes a Passcodes service.
type PasscodeConfig struct {
	Params        Argon2Params     // for new hashes and the dummy hash
	MaxConcurrent int              // Argon2 evaluations at once (each holds Params.Memory)
	MaxWaiting    int              // callers allowed to queue for a slot; more fail fast with ErrBusy
	MaxGrace      time.Duration    // longest grace Rotate accepts
	Now           func() time.Time // clock; time.Now when nil
}

// DefaultPasscodeConfig returns production settings: default Argon2 params,
// 2 concurrent evaluations (128 MiB), 32 waiting, grace up to 30 days.
func DefaultPasscodeConfig() PasscodeConfig {
	return PasscodeConfig{
		Params:        DefaultArgon2Params(),
		MaxConcurrent: 2,
		MaxWaiting:    32,
		MaxGrace:      30 * 24 * time.Hour,
	}
}

// Passcodes manages the shared client passcode: set, generate, rotate with
// grace, clear, status and the constant-shape Check. State is read from the
// store on every call, so a change made through any server replica or the
// admin API applies at once.
type Passcodes struct {
	store SettingsStore
	cfg   PasscodeConfig

	slots   chan struct{}
	waiting atomic.Int64
	dummy   phc // computed once, in NewPasscodes

	evaluations atomic.Int64 // Argon2 evaluations by check (tests assert the constant shape)
}

// NewPasscodes returns the service over store. Zero fields of cfg take
// their defaults; invalid Argon2 params are an error naming the field.
func NewPasscodes(store SettingsStore, cfg PasscodeConfig) (*Passcodes, error) {
	def := DefaultPasscodeConfig()
	if cfg.Params == (Argon2Params{}) {
		cfg.Params = def.Params
	}
	if err := cfg.Params.Validate(); err != nil {
		return nil, fmt.Errorf("passcode config: %w", err)
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = def.MaxConcurrent
	}
	if cfg.MaxWaiting < 0 {
		return nil, fmt.Errorf("passcode config: MaxWaiting must not be negative")
	}
	if cfg.MaxWaiting == 0 {
		cfg.MaxWaiting = def.MaxWaiting
	}
	if cfg.MaxGrace <= 0 {
		cfg.MaxGrace = def.MaxGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// The dummy is a hash of random bytes: no input can match it, and it
	// costs what a real hash with the same params costs.
	dummy, err := HashPasscode(string(randomBytes(32)), cfg.Params)
	if err != nil {
		return nil, fmt.Errorf("passcode config: dummy hash: %w", err)
	}
	h, err := parsePHC(dummy)
	if err != nil {
		return nil, fmt.Errorf("passcode config: dummy hash: %w", err)
	}
	p := &Passcodes{store: store, cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent), dummy: h}
	return p, nil
}

// passcodeState is the JSON stored under PasscodeSettingKey. It holds
// hashes only. LastGeneration survives Clear so generation numbers are
// never reused (sessions are revoked by generation).
type passcodeState struct {
	LastGeneration int            `json:"lastGeneration"`
	Current        *passcodeEntry `json:"current,omitempty"`
	Previous       *passcodeEntry `json:"previous,omitempty"`
}

type passcodeEntry struct {
	PHC        string    `json:"phc"`
	Generation int       `json:"generation"`
	Generated  bool      `json:"generated,omitempty"` // compare CanonicalGenerated forms
	SetAt      time.Time `json:"setAt"`
	GraceUntil time.Time `json:"graceUntil,omitzero"` // previous only
}

func (p *Passcodes) load(ctx context.Context) (passcodeState, error) {
	var st passcodeState
	b, err := p.store.Setting(ctx, PasscodeSettingKey)
	if deploy.IsNotFound(err) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("load passcode state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, deploy.Wrap(deploy.KindInternal, err, "load passcode state: stored value is not valid JSON")
	}
	return st, nil
}

// update applies change to the stored state in one store transaction
// (store.UpdateSetting), so that two replicas changing the passcode at
// once neither lose a change nor hand out one generation twice. change may
// run more than once and must only compute; its error is returned as it is.
func (p *Passcodes) update(ctx context.Context, change func(*passcodeState) error) error {
	var changeErr error
	err := p.store.UpdateSetting(ctx, PasscodeSettingKey, func(old []byte) ([]byte, error) {
		var st passcodeState
		if old != nil {
			if err := json.Unmarshal(old, &st); err != nil {
				return nil, deploy.Wrap(deploy.KindInternal, err, "load passcode state: stored value is not valid JSON")
			}
		}
		if changeErr = change(&st); changeErr != nil {
			return nil, changeErr
		}
		return json.Marshal(st)
	})
	if err != nil && (changeErr == nil || !errors.Is(err, changeErr)) {
		return fmt.Errorf("save passcode state: %w", err)
	}
	return err
}

// PasscodeChange describes the outcome of a change.
type PasscodeChange struct {
	// Generation is the new current generation (0 after Clear).
	Generation int
	// Code is the generated passcode, returned once (Generate, or Rotate
	// with no passcode given). It is stored only as a hash.
	Code string
	// GraceUntil is when the previous passcode stops working (Rotate with
	// grace > 0); zero otherwise.
	GraceUntil time.Time
	// Retired lists generations that stopped working at once (no grace).
	// The caller revokes the sessions they minted:
	//	store.RevokeSessions(ctx, deploy.SessionFilter{Method: "passcode", Generation: g}, now)
	Retired []int
}

// Set makes p (an admin-chosen passcode that must pass CheckPasscodePolicy)
// the current passcode. Any previous passcode stops working at once and is
// listed in Retired; use Rotate for a hand-over with grace.
func (p *Passcodes) Set(ctx context.Context, passcode string) (PasscodeChange, error) {
	if err := CheckPasscodePolicy(passcode); err != nil {
		return PasscodeChange{}, err
	}
	return p.replace(ctx, passcode, false, 0, false)
}

// Generate makes a new random passcode current and returns it once in
// Code. Any previous passcode stops working at once (Retired).
func (p *Passcodes) Generate(ctx context.Context) (PasscodeChange, error) {
	code, err := GeneratePasscode()
	if err != nil {
		return PasscodeChange{}, err
	}
	ch, err := p.replace(ctx, code, true, 0, false)
	ch.Code = code
	return ch, err
}

// Rotate replaces the current passcode with newPasscode (policy-checked),
// or with a generated one (returned in Code) when newPasscode is "". The
// old passcode keeps working until now+grace. With grace 0 it stops at once
// and is listed in Retired, so the caller revokes its sessions (emergency
// rotation). A passcode still in an earlier grace period is retired.
func (p *Passcodes) Rotate(ctx context.Context, newPasscode string, grace time.Duration) (PasscodeChange, error) {
	if grace < 0 || grace > p.cfg.MaxGrace {
		return PasscodeChange{}, deploy.Errorf(deploy.KindInvalid, "grace must be between 0 and %s, got %s", p.cfg.MaxGrace, grace)
	}
	generated := newPasscode == ""
	if generated {
		code, err := GeneratePasscode()
		if err != nil {
			return PasscodeChange{}, err
		}
		newPasscode = code
	} else if err := CheckPasscodePolicy(newPasscode); err != nil {
		return PasscodeChange{}, err
	}
	ch, err := p.replace(ctx, newPasscode, generated, grace, true)
	if generated && err == nil {
		ch.Code = newPasscode
	}
	return ch, err
}

// replace installs a new current passcode. With rotate, a current one must
// exist and is kept as previous until now+grace (if grace > 0).
func (p *Passcodes) replace(ctx context.Context, passcode string, generated bool, grace time.Duration, rotate bool) (PasscodeChange, error) {
	form := passcode
	if generated {
		form = CanonicalGenerated(passcode)
	}
	phcString, err := HashPasscode(form, p.cfg.Params)
	if err != nil {
		return PasscodeChange{}, err
	}
	var ch PasscodeChange
	err = p.update(ctx, func(st *passcodeState) error {
		if rotate && st.Current == nil {
			return deploy.Errorf(deploy.KindConflict, "no passcode is set, so there is nothing to rotate: use 'passcode set' or 'passcode generate'")
		}
		now := p.cfg.Now()
		ch = PasscodeChange{}
		if prev := st.Previous; prev != nil && now.Before(prev.GraceUntil) {
			ch.Retired = append(ch.Retired, prev.Generation)
		}
		st.Previous = nil
		if cur := st.Current; cur != nil {
			if rotate && grace > 0 {
				cur.GraceUntil = now.Add(grace)
				st.Previous = cur
				ch.GraceUntil = cur.GraceUntil
			} else {
				ch.Retired = append(ch.Retired, cur.Generation)
			}
		}
		st.LastGeneration++
		st.Current = &passcodeEntry{PHC: phcString, Generation: st.LastGeneration, Generated: generated, SetAt: now}
		ch.Generation = st.LastGeneration
		return nil
	})
	if err != nil {
		return PasscodeChange{}, err
	}
	return ch, nil
}

// Clear removes the passcode (and any previous one in grace): every
// passcode login fails until a new one is set. The removed generations are
// listed in Retired.
func (p *Passcodes) Clear(ctx context.Context) (PasscodeChange, error) {
	var ch PasscodeChange
	err := p.update(ctx, func(st *passcodeState) error {
		ch = PasscodeChange{}
		if st.Previous != nil && p.cfg.Now().Before(st.Previous.GraceUntil) {
			ch.Retired = append(ch.Retired, st.Previous.Generation)
		}
		if st.Current != nil {
			ch.Retired = append(ch.Retired, st.Current.Generation)
		}
		st.Current, st.Previous = nil, nil
		return nil
	})
	return ch, err
}

// Status reports whether a passcode is set, its generation and age.
func (p *Passcodes) Status(ctx context.Context) (wire.PasscodeStatus, error) {
	st, err := p.load(ctx)
	if err != nil {
		return wire.PasscodeStatus{}, err
	}
	var s wire.PasscodeStatus
	now := p.cfg.Now()
	if c := st.Current; c != nil {
		s = wire.PasscodeStatus{Set: true, Generation: c.Generation, Generated: c.Generated, SetAt: c.SetAt, Age: now.Sub(c.SetAt)}
	}
	if prev := st.Previous; prev != nil && now.Before(prev.GraceUntil) {
		s.PreviousGeneration, s.PreviousGraceUntil = prev.Generation, prev.GraceUntil
	}
	return s, nil
}

// Check verifies a passcode presented by a client and returns the
// generation it matched. Every failure — wrong passcode, malformed input,
// no passcode set — takes the same path: one Argon2 evaluation (of the
// current hash, or of a dummy when there is none or the input is malformed)
// and ErrBadPasscode. While a rotation's grace period is open every attempt
// evaluates both hashes, so the time never tells which one matched. When
// too many callers wait for an evaluation slot it fails fast with ErrBusy;
// a cancelled ctx returns the ctx error.
// Call it only after the Throttle allowed the attempt.
func (p *Passcodes) Check(ctx context.Context, passcode string) (int, error) {
	return p.check(ctx, passcode, true)
}

// Refuse runs the same path as a failed Check and returns ErrBadPasscode.
// The server calls it when passcode mode is off, so that the answer and
// its timing are the same as for a wrong passcode.
func (p *Passcodes) Refuse(ctx context.Context, passcode string) error {
	_, err := p.check(ctx, passcode, false)
	return err
}

func (p *Passcodes) check(ctx context.Context, passcode string, enabled bool) (int, error) {
	if err := p.acquire(ctx); err != nil {
		return 0, err
	}
	defer func() { <-p.slots }()
	// The state is read even when the mode is off: a grace period open
	// makes every attempt cost two evaluations, refused ones included.
	st, err := p.load(ctx)
	if err != nil {
		return 0, err
	}
	now := p.cfg.Now()
	bad := !enabled || malformed(passcode)
	normalized := ""
	if !bad {
		normalized = NormalizePasscode(passcode)
	}
	// One evaluation, of the current hash or the dummy; a second only while
	// a rotation's grace period is open, and then for every attempt, so
	// which hash matched never shows in the timing.
	entries := []*passcodeEntry{st.Current}
	if prev := st.Previous; prev != nil && now.Before(prev.GraceUntil) {
		entries = append(entries, prev)
	}
	match := 0
	for _, e := range entries {
		h, ok := phc{}, false
		if e != nil && !bad {
			var err error
			if h, err = parsePHC(e.PHC); err != nil {
				return 0, deploy.Wrap(deploy.KindInternal, err, "stored passcode hash is unreadable")
			}
			ok = true
		}
		p.evaluations.Add(1)
		if !ok {
			p.dummy.verify(normalized)
			continue
		}
		in := normalized
		if e.Generated {
			in = CanonicalGenerated(normalized)
		}
		if h.verify(in) && match == 0 {
			match = e.Generation
		}
	}
	if match == 0 {
		return 0, ErrBadPasscode
	}
	return match, nil
}

// acquire takes an evaluation slot, waiting with ctx; it fails fast with
// ErrBusy when MaxWaiting callers already wait.
func (p *Passcodes) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	if p.waiting.Add(1) > int64(p.cfg.MaxWaiting) {
		p.waiting.Add(-1)
		return ErrBusy
	}
	defer p.waiting.Add(-1)
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for passcode check: %w", ctx.Err())
	}
}

// Load reports how many hash evaluations are running and how many callers
// wait for a slot (for metrics and tests).
func (p *Passcodes) Load() (running, waiting int) {
	return len(p.slots), int(p.waiting.Load())
}

// IsBadPasscode reports whether err is the uniform passcode failure.
func IsBadPasscode(err error) bool { return errors.Is(err, ErrBadPasscode) }
