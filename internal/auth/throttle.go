package auth

import (
	"container/list"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// ThrottleConfig tunes a Throttle. Zero fields take the defaults of
// DefaultThrottleConfig.
type ThrottleConfig struct {
	FreeFailures int           // failures per key before backoff starts (5)
	BaseDelay    time.Duration // first backoff delay (1s), doubling per failure
	MaxDelay     time.Duration // backoff cap (15m)
	Forget       time.Duration // a key with no failure for this long starts afresh (1h)

	HourlyLimit int           // evaluated failures per source per Window (100)
	Window      time.Duration // rolling window of HourlyLimit (1h)

	GlobalLimit  int           // failures across all keys per GlobalWindow before Alert (50)
	GlobalWindow time.Duration // (1m)
	// Alert is called (outside the lock) once per global window in which
	// failures exceed GlobalLimit; the server writes an audit alert.
	Alert func(failures int, window time.Duration)

	MaxKeys int              // tracked sources and, separately, devices (100,000 each)
	Now     func() time.Time // clock; time.Now when nil
}

// DefaultThrottleConfig returns the production settings.
func DefaultThrottleConfig() ThrottleConfig {
	return ThrottleConfig{
		FreeFailures: 5, BaseDelay: time.Second, MaxDelay: 15 * time.Minute, Forget: time.Hour,
		HourlyLimit: 100, Window: time.Hour,
		GlobalLimit: 50, GlobalWindow: time.Minute,
		MaxKeys: 100_000,
	}
}

// Throttle slows down passcode guessing without ever locking anyone out
// (security.md §2.3.4). Failures are counted per source address and per
// claimed device id: after FreeFailures the key must wait BaseDelay,
// doubling per failure up to MaxDelay; a source gets at most HourlyLimit
// evaluated failures per rolling Window. A success resets the source and
// the device, so a technician elsewhere is never affected by an attack.
//
// State is in memory only: a restart forgets it (documented trade-off,
// security.md §9 item 5). Memory is bounded by MaxKeys per kind, evicting
// the least recently failed key; sources and devices are kept apart so
// that inventing device ids cannot evict a source's record.
type Throttle struct {
	cfg ThrottleConfig

	mu      sync.Mutex
	sources keyTable
	devices keyTable

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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Throttle{cfg: cfg}
	t.sources.init()
	t.devices.init()
	return t, nil
}

// Allow reports whether an attempt from source claiming device may be
// evaluated now; if not, retryAfter (> 0) says how long to wait (the 429
// Retry-After). It is asked before any Argon2 work. device may be "".
func (t *Throttle) Allow(source, device string) (ok bool, retryAfter time.Duration) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	if e := t.sources.get(sourceKey(source)); e != nil {
		wait = max(wait, t.backoffWait(e, now), t.windowWait(e, now))
	}
	if device != "" {
		if e := t.devices.get(device); e != nil {
			wait = max(wait, t.backoffWait(e, now))
		}
	}
	return wait <= 0, wait
}

// Attempt is an attempt admitted by Begin. Exactly one of Fail, Succeed
// or Abandon ends it; later calls do nothing.
type Attempt struct {
	t              *Throttle
	source, device string
	ended          bool
	free           bool // admitted by Admit: holds no place
}

// Begin is Allow for an attempt about to be evaluated, made atomic: the
// admitted attempt counts as a failure in every other decision until it
// ends, so parallel guesses cannot all slip through a check meant to let
// them through one at a time (security.md PC-6). Refused, it returns nil
// and the wait (> 0).
func (t *Throttle) Begin(source, device string) (*Attempt, time.Duration) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	src := t.sources.get(sourceKey(source))
	if src != nil {
		wait = max(wait, t.pendingWait(src, now, true))
	}
	var dev *keyState
	if device != "" {
		if dev = t.devices.get(device); dev != nil {
			wait = max(wait, t.pendingWait(dev, now, false))
		}
	}
	if wait > 0 {
		return nil, wait
	}
	t.sources.touch(sourceKey(source), t.cfg.MaxKeys).inflight++
	if device != "" {
		t.devices.touch(device, t.cfg.MaxKeys).inflight++
	}
	return &Attempt{t: t, source: source, device: device}, 0
}

// Admit is Begin for attempts at something that cannot usefully be
// guessed (a certificate, an Entra token, a 256-bit admin token): it
// applies the backoff and window of earlier failures and counts this
// attempt's outcome, but does not hold a place while it runs, so many
// machines behind one address may log in at once.
func (t *Throttle) Admit(source, device string) (*Attempt, time.Duration) {
	if ok, wait := t.Allow(source, device); !ok {
		return nil, wait
	}
	return &Attempt{t: t, source: source, device: device, free: true}, 0
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

// Fail records the attempt as an evaluated failure.
func (a *Attempt) Fail() { a.end(endFail) }

// Succeed forgets the failures of the attempt's source and device.
func (a *Attempt) Succeed() { a.end(endSucceed) }

// Abandon ends an attempt that was not evaluated (the server was busy):
// it counts neither way.
func (a *Attempt) Abandon() { a.end(endAbandon) }

type attemptEnd int

const (
	endAbandon attemptEnd = iota
	endFail
	endSucceed
)

// end releases the reservation and records the outcome in one step under
// the lock, so no other Begin sees the attempt neither pending nor
// counted. Only the first end of an attempt counts.
func (a *Attempt) end(how attemptEnd) {
	if a == nil || a.ended {
		return
	}
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
		alert = t.failLocked(a.source, a.device, now)
	case endSucceed:
		t.successLocked(a.source, a.device)
	}
	t.mu.Unlock()
	if alert > 0 && t.cfg.Alert != nil {
		t.cfg.Alert(alert, t.cfg.GlobalWindow)
	}
}

// Failure records an evaluated, failed attempt.
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

// Success forgets the failures of source and device.
func (t *Throttle) Success(source, device string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.successLocked(source, device)
}

// successLocked forgets source and device, keeping the count of attempts
// still in flight for them. t.mu is held.
func (t *Throttle) successLocked(source, device string) {
	forget := func(k *keyTable, key string) {
		e := k.get(key)
		if e == nil {
			return
		}
		if e.inflight == 0 {
			k.remove(key)
			return
		}
		*e = keyState{key: key, inflight: e.inflight}
	}
	forget(&t.sources, sourceKey(source))
	if device != "" {
		forget(&t.devices, device)
	}
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
	consecutive int       // failures since the last success or quiet period
	inflight    int       // attempts admitted by Begin and not yet ended
	lastFailure time.Time // for backoff and Forget
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

// keyTable is a map with least-recently-failed eviction.
type keyTable struct {
	m     map[string]*list.Element
	order *list.List // front = most recent; values are *keyState
}

func (k *keyTable) init() {
	k.m = map[string]*list.Element{}
	k.order = list.New()
}

func (k *keyTable) get(key string) *keyState {
	if el, ok := k.m[key]; ok {
		return el.Value.(*keyState)
	}
	return nil
}

// touch returns the state of key, creating it (and evicting the oldest
// key beyond limit) if needed, and marks it most recent.
func (k *keyTable) touch(key string, limit int) *keyState {
	if el, ok := k.m[key]; ok {
		k.order.MoveToFront(el)
		return el.Value.(*keyState)
	}
	for len(k.m) >= limit {
		old := k.order.Back()
		k.order.Remove(old)
		delete(k.m, old.Value.(*keyState).key)
	}
	e := &keyState{key: key}
	k.m[key] = k.order.PushFront(e)
	return e
}

func (k *keyTable) remove(key string) {
	if el, ok := k.m[key]; ok {
		k.order.Remove(el)
		delete(k.m, key)
	}
}

// sourceKey normalises a source address: IPv4 (also v4-mapped) as is,
// IPv6 by its /64, since one host usually owns a whole /64. Anything else
// (a host:port or a name) is used verbatim after stripping a port.
func sourceKey(source string) string {
	if ap, err := netip.ParseAddrPort(source); err == nil {
		source = ap.Addr().String()
	}
	addr, err := netip.ParseAddr(source)
	if err != nil {
		return source
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
