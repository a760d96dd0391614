package auth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// ThrottleConfig tunes a Throttle. Zero fields take the defaults of
// DefaultThrottleConfig.
type ThrottleConfig struct {
	FreeFailures int           // failures per key before backoff starts (5)
	BaseDelay    time.Duration // first backoff delay (1s), doubling per failure
	MaxDelay     time.Duration // backoff cap (15m)
	Forget       time.Duration // a key with no failure for this long starts afresh (1h)

	HourlyLimit int           // evaluated failures per source per Window (100)
	Window      time.Duration // rolling window of HourlyLimit and GlobalHourlyLimit (1h)

	GlobalLimit  int           // failures across all keys per GlobalWindow before Alert (50)
	GlobalWindow time.Duration // (1m)
	// Alert is called (outside the lock) once per global window in which
	// failures exceed GlobalLimit; the server writes an audit alert.
	Alert func(failures int, window time.Duration)

	// GlobalHourlyLimit caps the guesses (attempts admitted by Begin)
	// that fail, across all sources not known to be good, in any Window
	// (200). Half of it may be spent at once; the rest is handed out
	// evenly, one guess every 2·Window/GlobalHourlyLimit (36 s): the small
	// global delay an attack from many addresses meets once it has used
	// the burst, while known-good sources go straight through.
	GlobalHourlyLimit int
	// KnownFor is how long a source that proved a credential (not an
	// anonymous login) stays known good (7 days). A known-good source
	// with no failure on record skips the global delay.
	KnownFor time.Duration

	MaxKeys int              // tracked sources, devices and known-good sources (100,000 each)
	Now     func() time.Time // clock; time.Now when nil

	// Shared, when set, is the database every server replica uses: each
	// guess Begin admits is also counted there, per source (HourlyLimit)
	// and, unless the source is known good, globally (GlobalHourlyLimit),
	// in the rolling Window, so that N replicas together still evaluate
	// at most those numbers. The memory state stays the fast path: what
	// it refuses never reaches the database.
	Shared SharedCounts
	// SharedTimeout bounds each call to Shared (5 s): an attempt whose
	// count cannot be taken in time is refused, not admitted unchecked.
	SharedTimeout time.Duration
}

// SharedCounts is the part of deploy.Store the throttle shares its counts
// through.
type SharedCounts interface {
	TakeThrottle(ctx context.Context, now time.Time, window time.Duration, limits ...deploy.ThrottleLimit) (id string, wait time.Duration, err error)
	ReleaseThrottle(ctx context.Context, id string, keys ...string) error
}

// Keys of the shared counts.
const (
	sharedSourcePrefix = "login.source:"
	sharedGlobal       = "login.global"
)

// DefaultThrottleConfig returns the production settings.
func DefaultThrottleConfig() ThrottleConfig {
	return ThrottleConfig{
		FreeFailures: 5, BaseDelay: time.Second, MaxDelay: 15 * time.Minute, Forget: time.Hour,
		HourlyLimit: 100, Window: time.Hour,
		GlobalLimit: 50, GlobalWindow: time.Minute,
		GlobalHourlyLimit: 200, KnownFor: 7 * 24 * time.Hour,
		MaxKeys: 100_000,
	}
}

// Throttle slows down passcode guessing without ever locking anyone out
// (security.md §2.3.4). Failures are counted per source address: after
// FreeFailures the source must wait BaseDelay, doubling per failure up to
// MaxDelay, and it gets at most HourlyLimit evaluated failures per rolling
// Window. A success resets nothing, so succeeding at an easy method
// (anonymous, or a colleague behind the same NAT) buys no guesses.
//
// A claimed device id is a second key, but its failures delay only
// sources that have failed themselves: anyone can claim a device id, so
// a clean source is never held up by failures others made in its name.
//
// Across sources, guesses draw on a global budget (GlobalHourlyLimit, a
// token bucket holding half of it): an attack from many addresses spends
// the burst and then gets one guess every 36 s in all. A source that has
// proved a credential before and has no failure on record is known good
// and does not wait for the budget, so technicians at known machines log
// in at once during such an attack. The last tenth of the burst is kept
// for sources that have not failed in KnownFor, so a technician at a new
// address usually finds a token too.
//
// State is in memory; with ThrottleConfig.Shared the guesses Begin admits
// are also counted in the database, so that every replica draws on one
// per-source and one global budget. Without it a restart forgets the
// counts (documented trade-off, security.md §9 item 5). Memory is bounded
// by MaxKeys per kind, evicting the least recently used key; sources,
// devices and known-good sources are kept apart so that inventing device
// ids or failing from many addresses cannot evict a source's record or a
// known-good one.
type Throttle struct {
	cfg ThrottleConfig

	mu      sync.Mutex
	sources keyTable
	devices keyTable
	known   keyTable // sources that proved a credential; lastSuccess set

	tokens     float64 // global budget left (≤ burst)
	lastRefill time.Time

	globalStart   time.Time
	globalCount   int
	globalAlerted bool
}

// NewThrottle returns a Throttle; negative settings are an error naming
// the field.
func NewThrottle(cfg ThrottleConfig) (*Throttle, error) {
	def := DefaultThrottleConfig()
	for _, f := range []struct {
		name string
		v    *int
		d    int
	}{
		{"FreeFailures", &cfg.FreeFailures, def.FreeFailures},
		{"HourlyLimit", &cfg.HourlyLimit, def.HourlyLimit},
		{"GlobalLimit", &cfg.GlobalLimit, def.GlobalLimit},
		{"GlobalHourlyLimit", &cfg.GlobalHourlyLimit, def.GlobalHourlyLimit},
		{"MaxKeys", &cfg.MaxKeys, def.MaxKeys},
	} {
		if *f.v < 0 {
			return nil, fmt.Errorf("throttle config: %s must not be negative", f.name)
		}
		if *f.v == 0 {
			*f.v = f.d
		}
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		d    time.Duration
	}{
		{"BaseDelay", &cfg.BaseDelay, def.BaseDelay},
		{"MaxDelay", &cfg.MaxDelay, def.MaxDelay},
		{"Forget", &cfg.Forget, def.Forget},
		{"Window", &cfg.Window, def.Window},
		{"GlobalWindow", &cfg.GlobalWindow, def.GlobalWindow},
		{"KnownFor", &cfg.KnownFor, def.KnownFor},
		{"SharedTimeout", &cfg.SharedTimeout, 5 * time.Second},
	} {
		if *f.v < 0 {
			return nil, fmt.Errorf("throttle config: %s must not be negative", f.name)
		}
		if *f.v == 0 {
			*f.v = f.d
		}
	}
	if cfg.MaxDelay < cfg.BaseDelay {
		return nil, fmt.Errorf("throttle config: MaxDelay %s is less than BaseDelay %s", cfg.MaxDelay, cfg.BaseDelay)
	}
	if cfg.GlobalHourlyLimit < 2 {
		return nil, fmt.Errorf("throttle config: GlobalHourlyLimit must be at least 2, got %d", cfg.GlobalHourlyLimit)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Throttle{cfg: cfg}
	t.sources.init()
	t.devices.init()
	t.known.init()
	t.tokens, t.lastRefill = t.burst(), cfg.Now()
	return t, nil
}

// burst is the global budget's capacity: half the hourly limit; the other
// half refills over the Window, so no Window spends more than the limit.
func (t *Throttle) burst() float64 { return float64(t.cfg.GlobalHourlyLimit / 2) }

// rate is the refill in tokens per second.
func (t *Throttle) rate() float64 {
	return float64(t.cfg.GlobalHourlyLimit-t.cfg.GlobalHourlyLimit/2) / t.cfg.Window.Seconds()
}

// Allow reports whether an attempt from source claiming device may be
// evaluated now; if not, retryAfter (> 0) says how long to wait (the 429
// Retry-After). It applies the source's backoff and window, and the
// device's backoff if the source has failed itself; not the global
// budget, which only guesses (Begin) draw on. device may be "".
func (t *Throttle) Allow(source, device string) (ok bool, retryAfter time.Duration) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	src := t.sources.get(sourceKey(source))
	if src != nil {
		wait = max(wait, t.backoffWait(src, now), t.windowWait(src, now))
	}
	if device != "" && t.hasFailed(src, now) {
		if e := t.devices.get(device); e != nil {
			wait = max(wait, t.backoffWait(e, now))
		}
	}
	return wait <= 0, wait
}

// Attempt is an attempt admitted by Begin or Admit. Exactly one of Fail,
// Succeed, Pass, Busy or Abandon ends it; later calls do nothing.
type Attempt struct {
	t              *Throttle
	source, device string
	ended          bool
	free           bool // admitted by Admit: holds no place
	token          bool // holds a token of the global budget
	// shared names the hits counted for the attempt in the shared counts
	// (Begin with ThrottleConfig.Shared), under sharedKeys: the source's
	// key, then the global one when it holds a token.
	shared     string
	sharedKeys []string
}

// Begin admits a guess (an attempt that runs Argon2: a passcode, or a
// refusal made to cost the same) atomically: the admitted attempt counts
// as a failure in every other decision until it ends, so parallel
// guesses cannot all slip through a check meant to let them through one
// at a time (security.md PC-6), and unless the source is known good it
// holds a token of the global budget. Refused, it returns nil and the
// wait (> 0).
func (t *Throttle) Begin(source, device string) (*Attempt, time.Duration) {
	now := t.cfg.Now()
	key := sourceKey(source)
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	src := t.sources.get(key)
	if src != nil {
		wait = max(wait, t.pendingWait(src, now, true))
	}
	failed := t.hasFailed(src, now)
	if device != "" && failed {
		if dev := t.devices.get(device); dev != nil {
			wait = max(wait, t.pendingWait(dev, now, false))
		}
	}
	known := !failed && (src == nil || src.inflight == 0) && t.isKnown(key, now)
	if !known {
		need := 1.0
		if src != nil && !src.lastFailure.IsZero() && now.Sub(src.lastFailure) < t.cfg.KnownFor {
			need += t.reserve() // the last tokens are kept for sources that have not failed
		}
		wait = max(wait, t.budgetWait(now, need))
	}
	if wait > 0 {
		return nil, wait
	}
	t.sources.touch(key, t.cfg.MaxKeys).inflight++
	if device != "" {
		t.devices.touch(device, t.cfg.MaxKeys).inflight++
	}
	if !known {
		t.tokens--
	}
	a := &Attempt{t: t, source: source, device: device, token: !known}
	if t.cfg.Shared == nil {
		return a, 0
	}
	t.mu.Unlock()
	wait = a.takeShared(now, key, !known)
	t.mu.Lock() // for the deferred Unlock
	if wait > 0 {
		return nil, wait
	}
	return a, 0
}

// takeShared counts the admitted guess a in the shared counts (t.mu is not
// held: this is a database write). Refused, or when the database does not
// answer, the attempt is abandoned (its reservation undone) and the wait
// returned (> 0); the caller must then not use a.
func (a *Attempt) takeShared(now time.Time, key string, global bool) time.Duration {
	t := a.t
	limits := []deploy.ThrottleLimit{{Key: sharedSourcePrefix + key, Limit: t.cfg.HourlyLimit}}
	if global {
		limits = append(limits, deploy.ThrottleLimit{Key: sharedGlobal, Limit: t.cfg.GlobalHourlyLimit})
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.SharedTimeout)
	defer cancel()
	id, wait, err := t.cfg.Shared.TakeThrottle(ctx, now, t.cfg.Window, limits...)
	if err != nil {
		wait = t.cfg.BaseDelay // not checked: refuse, ask again soon
	}
	if wait > 0 {
		a.endLocal(endAbandon)
		return wait
	}
	a.shared = id
	a.sharedKeys = make([]string, len(limits))
	for i, l := range limits {
		a.sharedKeys[i] = l.Key
	}
	return 0
}

// Admit is Begin for attempts at something that cannot usefully be
// guessed and costs no Argon2 (a certificate, an Entra token, a 256-bit
// admin token): it applies the backoff and window of earlier failures and
// counts this attempt's outcome, but holds no place and no global token,
// so many machines behind one address may log in at once.
func (t *Throttle) Admit(source, device string) (*Attempt, time.Duration) {
	if ok, wait := t.Allow(source, device); !ok {
		return nil, wait
	}
	return &Attempt{t: t, source: source, device: device, free: true}, 0
}

// hasFailed reports whether the source e has a failure on record: one in
// its rolling window or a run of failures not yet forgotten.
func (t *Throttle) hasFailed(e *keyState, now time.Time) bool {
	if e == nil {
		return false
	}
	if e.consecutive > 0 && now.Sub(e.lastFailure) < t.cfg.Forget {
		return true
	}
	t.prune(e, now)
	return len(e.buckets) > 0
}

// isKnown reports whether the source proved a credential within KnownFor.
func (t *Throttle) isKnown(key string, now time.Time) bool {
	e := t.known.get(key)
	return e != nil && now.Sub(e.lastSuccess) < t.cfg.KnownFor
}

// refill adds the tokens earned since the last refill.
func (t *Throttle) refill(now time.Time) {
	if d := now.Sub(t.lastRefill); d > 0 {
		t.tokens = min(t.burst(), t.tokens+d.Seconds()*t.rate())
	}
	t.lastRefill = now
}

// reserve is how many tokens of the global budget only sources that have
// not failed within KnownFor may spend: a tenth of the burst (10). An
// attack from addresses that have failed spends the rest; a technician
// at a new address still finds a token, unless the attacker keeps
// bringing fresh addresses (each is clean for its first guess only).
func (t *Throttle) reserve() float64 { return float64(int(t.burst()) / 10) }

// budgetWait is how long until the global budget holds need tokens.
func (t *Throttle) budgetWait(now time.Time, need float64) time.Duration {
	t.refill(now)
	if t.tokens >= need {
		return 0
	}
	return max(time.Duration((need-t.tokens)/t.rate()*float64(time.Second)), time.Millisecond)
}

// giveBack returns a token an attempt held but did not spend.
func (t *Throttle) giveBack(now time.Time) {
	t.refill(now)
	t.tokens = min(t.burst(), t.tokens+1)
}

// pendingWait is the wait for e counting its in-flight attempts as
// failures: while they run, one more is admitted only if it would still be
// free of backoff and within the window.
func (t *Throttle) pendingWait(e *keyState, now time.Time, windowed bool) time.Duration {
	wait := t.backoffWait(e, now)
	if windowed {
		wait = max(wait, t.windowWait(e, now))
	}
	if wait > 0 || e.inflight == 0 {
		return wait
	}
	consecutive := e.consecutive
	if !e.lastFailure.IsZero() && now.Sub(e.lastFailure) >= t.cfg.Forget {
		consecutive = 0
	}
	over := consecutive+e.inflight >= t.cfg.FreeFailures
	if windowed {
		total := 0
		for _, n := range e.buckets {
			total += n
		}
		over = over || total+e.inflight >= t.cfg.HourlyLimit
	}
	if over {
		return t.cfg.BaseDelay // the attempts in flight decide; ask again soon
	}
	return 0
}

// Fail records the attempt as an evaluated failure. A guess by a
// known-good source (which held no token) still spends one if the
// global budget has it.
func (a *Attempt) Fail() { a.end(endFail) }

// Succeed records that the attempt proved a credential: the source
// becomes known good. Earlier failures are not forgotten.
func (a *Attempt) Succeed() { a.end(endSucceed) }

// Pass ends an attempt that succeeded without proving anything (an
// anonymous login): it counts neither way and vouches for no one.
func (a *Attempt) Pass() { a.end(endPass) }

// Busy ends an attempt the server turned away unevaluated because the
// Argon2 queue was full: it counts against the source and device like a
// failure (the sender made the server work and may not retry for free),
// but gives its global token back, as no guess was evaluated.
func (a *Attempt) Busy() { a.end(endBusy) }

// Abandon ends an attempt that was not evaluated through no doing of the
// sender (a store error): it counts neither way.
func (a *Attempt) Abandon() { a.end(endAbandon) }

type attemptEnd int

const (
	endAbandon attemptEnd = iota
	endFail
	endSucceed
	endPass
	endBusy
)

// end releases the reservation and records the outcome in one step under
// the lock, so no other Begin sees the attempt neither pending nor
// counted. Only the first end of an attempt counts.
func (a *Attempt) end(how attemptEnd) {
	if a == nil || a.ended {
		return
	}
	a.endLocal(how)
	a.releaseShared(how)
}

// releaseShared gives back the shared hits that the outcome does not
// count: a failure keeps both; a busy refusal keeps the source's (it
// counts against the source) and gives the global one back; any other
// end gives both back.
func (a *Attempt) releaseShared(how attemptEnd) {
	if a.shared == "" {
		return
	}
	keys := a.sharedKeys
	switch how {
	case endFail:
		return
	case endBusy:
		keys = keys[1:]
	}
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.t.cfg.SharedTimeout)
	defer cancel()
	// A hit not given back only makes the source wait longer: the error
	// costs no guess.
	_ = a.t.cfg.Shared.ReleaseThrottle(ctx, a.shared, keys...)
}

// endLocal is end's part in memory.
func (a *Attempt) endLocal(how attemptEnd) {
	a.ended = true
	t := a.t
	now := t.cfg.Now()
	t.mu.Lock()
	if !a.free {
		if e := t.sources.get(sourceKey(a.source)); e != nil && e.inflight > 0 {
			e.inflight--
		}
		if a.device != "" {
			if e := t.devices.get(a.device); e != nil && e.inflight > 0 {
				e.inflight--
			}
		}
	}
	alert := 0
	switch how {
	case endFail:
		if !a.free && !a.token {
			if t.refill(now); t.tokens >= 1 {
				t.tokens--
			}
		}
		alert = t.failLocked(a.source, a.device, now)
	case endBusy:
		t.fail(t.sources.touch(sourceKey(a.source), t.cfg.MaxKeys), now, true)
		if a.device != "" {
			t.fail(t.devices.touch(a.device, t.cfg.MaxKeys), now, false)
		}
	case endSucceed:
		t.known.touch(sourceKey(a.source), t.cfg.MaxKeys).lastSuccess = now
	}
	if a.token && how != endFail {
		t.giveBack(now)
	}
	t.mu.Unlock()
	if alert > 0 && t.cfg.Alert != nil {
		t.cfg.Alert(alert, t.cfg.GlobalWindow)
	}
}

// Failure records an evaluated, failed attempt that was not admitted by
// Begin or Admit (a client certificate refused in the TLS handshake).
func (t *Throttle) Failure(source, device string) {
	now := t.cfg.Now()
	t.mu.Lock()
	alert := t.failLocked(source, device, now)
	t.mu.Unlock()
	if alert > 0 && t.cfg.Alert != nil {
		t.cfg.Alert(alert, t.cfg.GlobalWindow)
	}
}

// failLocked counts a failure and returns the global count to alert
// about (0: none). t.mu is held.
func (t *Throttle) failLocked(source, device string, now time.Time) int {
	t.fail(t.sources.touch(sourceKey(source), t.cfg.MaxKeys), now, true)
	if device != "" {
		t.fail(t.devices.touch(device, t.cfg.MaxKeys), now, false)
	}
	return t.countGlobal(now)
}

// Tracked returns how many sources and devices are tracked (for metrics
// and tests of the memory bound).
func (t *Throttle) Tracked() (sources, devices int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sources.m), len(t.devices.m)
}

// keyState is what is remembered of one key.
type keyState struct {
	key         string
	consecutive int       // failures since the last quiet period
	inflight    int       // attempts admitted by Begin and not yet ended
	lastFailure time.Time // for backoff and Forget
	lastSuccess time.Time // known-good sources only
	// window counts failures in buckets of Window/60 for the rolling limit
	// (sources only): bucketStart[i] is the start of bucket i.
	buckets     []int
	bucketStart []time.Time
}

func (t *Throttle) bucketSize() time.Duration { return max(t.cfg.Window/60, time.Nanosecond) }

func (t *Throttle) fail(e *keyState, now time.Time, windowed bool) {
	if !e.lastFailure.IsZero() && now.Sub(e.lastFailure) >= t.cfg.Forget {
		e.consecutive = 0
	}
	e.consecutive++
	e.lastFailure = now
	if !windowed {
		return
	}
	t.prune(e, now)
	start := now.Truncate(t.bucketSize())
	if n := len(e.bucketStart); n > 0 && e.bucketStart[n-1].Equal(start) {
		e.buckets[n-1]++
		return
	}
	e.buckets = append(e.buckets, 1)
	e.bucketStart = append(e.bucketStart, start)
}

// prune drops buckets that have left the window. A bucket counts until its
// end plus Window, so every failure is counted for at least a full Window
// and no rolling Window ever sees more than HourlyLimit.
func (t *Throttle) prune(e *keyState, now time.Time) {
	i := 0
	for i < len(e.bucketStart) && !now.Before(e.bucketStart[i].Add(t.bucketSize()+t.cfg.Window)) {
		i++
	}
	e.buckets, e.bucketStart = e.buckets[i:], e.bucketStart[i:]
}

// backoffWait is how long e must still wait under exponential backoff.
func (t *Throttle) backoffWait(e *keyState, now time.Time) time.Duration {
	if e.consecutive < t.cfg.FreeFailures || now.Sub(e.lastFailure) >= t.cfg.Forget {
		return 0
	}
	delay := t.cfg.BaseDelay
	for i := t.cfg.FreeFailures; i < e.consecutive && delay < t.cfg.MaxDelay; i++ {
		delay *= 2
	}
	delay = min(delay, t.cfg.MaxDelay)
	return e.lastFailure.Add(delay).Sub(now)
}

// windowWait is how long until the source's rolling-window count drops
// below HourlyLimit.
func (t *Throttle) windowWait(e *keyState, now time.Time) time.Duration {
	t.prune(e, now)
	total := 0
	for _, n := range e.buckets {
		total += n
	}
	for i := 0; total >= t.cfg.HourlyLimit && i < len(e.buckets); i++ {
		total -= e.buckets[i]
		if total < t.cfg.HourlyLimit {
			return e.bucketStart[i].Add(t.bucketSize() + t.cfg.Window).Sub(now)
		}
	}
	return 0
}

// countGlobal counts a failure in the fixed global window and returns the
// count when it first exceeds GlobalLimit in this window, else 0.
func (t *Throttle) countGlobal(now time.Time) int {
	if now.Sub(t.globalStart) >= t.cfg.GlobalWindow || now.Before(t.globalStart) {
		t.globalStart, t.globalCount, t.globalAlerted = now, 0, false
	}
	t.globalCount++
	if t.globalCount > t.cfg.GlobalLimit && !t.globalAlerted {
		t.globalAlerted = true
		return t.globalCount
	}
	return 0
}
