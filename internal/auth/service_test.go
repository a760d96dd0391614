package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/secrettest"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
	"github.com/imprint-osd/imprint/internal/wire"
)

// memStore is a map-backed SettingsStore for the pure-logic tests; the
// canary test below uses the real SQLite store.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
	// block, when set, makes Setting wait for it to close after signalling
	// entered.
	block   chan struct{}
	entered chan struct{}
}

func (s *memStore) Setting(ctx context.Context, key string) ([]byte, error) {
	if s.block != nil {
		s.entered <- struct{}{}
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, deploy.Errorf(deploy.KindNotFound, "setting %s not found", key)
	}
	return bytes.Clone(v), nil
}

func (s *memStore) PutSetting(ctx context.Context, key string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = bytes.Clone(v)
	return nil
}

func (s *memStore) DeleteSetting(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func (s *memStore) UpdateSetting(ctx context.Context, key string, fn func(old []byte) ([]byte, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[key]
	if ok && old == nil {
		old = []byte{}
	}
	v, err := fn(bytes.Clone(old))
	if err != nil {
		return err
	}
	if v == nil {
		delete(s.m, key)
		return nil
	}
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = bytes.Clone(v)
	return nil
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newPasscodes(t *testing.T, store auth.SettingsStore, clock *fakeClock) *auth.Passcodes {
	t.Helper()
	cfg := auth.DefaultPasscodeConfig()
	cfg.Params = testParams()
	cfg.Now = clock.Now
	p, err := auth.NewPasscodes(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const canary = "Canary-Zebra-Quokka-4471"

func wantBad(t *testing.T, gen int, err error) {
	t.Helper()
	if !auth.IsBadPasscode(err) || gen != 0 {
		t.Fatalf("Check = %d, %v; want 0, ErrBadPasscode", gen, err)
	}
	if deploy.ErrorKind(err) != deploy.KindUnauthorized {
		t.Errorf("kind = %q, want unauthorized", deploy.ErrorKind(err))
	}
}

func TestCheckWithoutPasscodeRefusesEverything(t *testing.T) {
	p := newPasscodes(t, &memStore{}, newClock())
	for _, in := range []string{"", "P@ssw0rd", "password", canary} {
		gen, err := p.Check(t.Context(), in)
		wantBad(t, gen, err)
	}
}

// TestCheckConstantShape: every way of failing runs the same number of
// Argon2 evaluations as a success and returns the same error value (spec
// PC-5): one outside a rotation, two for every attempt while a rotation's
// grace period is open (issue 14: a login costs one Argon2 otherwise).
func TestCheckConstantShape(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	calls := []struct {
		name string
		call func(*auth.Passcodes) error
	}{
		{"wrong", func(p *auth.Passcodes) error { _, err := p.Check(ctx, "Wrong-Zebra-Quokka-4471"); return err }},
		{"empty", func(p *auth.Passcodes) error { _, err := p.Check(ctx, ""); return err }},
		{"too long", func(p *auth.Passcodes) error { _, err := p.Check(ctx, strings.Repeat("x", 1025)); return err }},
		{"invalid UTF-8", func(p *auth.Passcodes) error { _, err := p.Check(ctx, "abc\xff\xfedefgh"); return err }},
		{"mode off (Refuse) with the right passcode", func(p *auth.Passcodes) error { return p.Refuse(ctx, canary) }},
		{"right", func(p *auth.Passcodes) error { _, err := p.Check(ctx, canary); return err }},
		{"previous", func(p *auth.Passcodes) error { _, err := p.Check(ctx, "Old-Marmot-Pylon-2291"); return err }},
	}
	states := []struct {
		name  string
		setup func(*auth.Passcodes)
		want  int64
		match map[string]bool // calls that succeed
	}{
		{"no passcode set", func(*auth.Passcodes) {}, 1, nil},
		{"passcode set", set, 1, map[string]bool{"right": true}},
		{"rotation in grace", func(p *auth.Passcodes) {
			if _, err := p.Set(ctx, "Old-Marmot-Pylon-2291"); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Rotate(ctx, canary, time.Hour); err != nil {
				t.Fatal(err)
			}
		}, 2, map[string]bool{"right": true, "previous": true}},
	}
	for _, st := range states {
		for _, c := range calls {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				p := newPasscodes(t, &memStore{}, clock)
				st.setup(p)
				before := p.Evaluations()
				err := c.call(p)
				if got := p.Evaluations() - before; got != st.want {
					t.Errorf("%d Argon2 evaluations, want %d", got, st.want)
				}
				if st.match[c.name] {
					if err != nil {
						t.Fatalf("%s refused: %v", c.name, err)
					}
					return
				}
				if err != auth.ErrBadPasscode {
					t.Errorf("err = %v, want the ErrBadPasscode value itself", err)
				}
			})
		}
	}
}

func set(p *auth.Passcodes) {
	if _, err := p.Set(context.Background(), canary); err != nil {
		panic(err)
	}
}

func TestSetCheckStatusClear(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	store := &memStore{}
	p := newPasscodes(t, store, clock)

	if st, err := p.Status(ctx); err != nil || st.Set {
		t.Fatalf("fresh Status = %+v, %v; want not set", st, err)
	}
	if _, err := p.Set(ctx, "password1"); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Fatalf("Set(weak) err = %v, want invalid", err)
	}
	ch, err := p.Set(ctx, canary)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.PasscodeChange{Generation: 1}, ch); diff != "" {
		t.Errorf("Set change (-want +got):\n%s", diff)
	}
	if gen, err := p.Check(ctx, canary); err != nil || gen != 1 {
		t.Fatalf("Check(right) = %d, %v; want 1, nil", gen, err)
	}
	gen, err := p.Check(ctx, strings.ToLower(canary))
	wantBad(t, gen, err)

	clock.Advance(90 * time.Minute)
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.PasscodeStatus{Set: true, Generation: 1, SetAt: newClock().Now(), Age: 90 * time.Minute}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}
	b, _ := json.Marshal(st)
	if strings.Contains(string(b), "argon2") || strings.Contains(string(b), canary) {
		t.Errorf("status JSON leaks the hash or value: %s", b)
	}
	stored := string(store.m[auth.PasscodeSettingKey])
	if strings.Contains(stored, canary) || !strings.Contains(stored, "$argon2id$v=19$") {
		t.Errorf("stored state = %s; want an Argon2id PHC and no plaintext", stored)
	}

	// Setting again replaces at once and retires generation 1.
	ch, err = p.Set(ctx, "Second-Otter-Lantern-88")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.PasscodeChange{Generation: 2, Retired: []int{1}}, ch); diff != "" {
		t.Errorf("second Set change (-want +got):\n%s", diff)
	}
	gen, err = p.Check(ctx, canary)
	wantBad(t, gen, err)

	ch, err = p.Clear(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.PasscodeChange{Retired: []int{2}}, ch); diff != "" {
		t.Errorf("Clear change (-want +got):\n%s", diff)
	}
	gen, err = p.Check(ctx, "Second-Otter-Lantern-88")
	wantBad(t, gen, err)
	if st, _ := p.Status(ctx); st.Set {
		t.Errorf("Status after Clear = %+v, want not set", st)
	}
	// Generations are never reused after Clear.
	if ch, err := p.Set(ctx, canary); err != nil || ch.Generation != 3 {
		t.Errorf("Set after Clear = %+v, %v; want generation 3", ch, err)
	}
}

func TestGenerateAcceptsLooseTyping(t *testing.T) {
	ctx := t.Context()
	p := newPasscodes(t, &memStore{}, newClock())
	ch, err := p.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Generation != 1 || len(ch.Code) != 14 {
		t.Fatalf("Generate = %+v", ch)
	}
	compact := strings.ReplaceAll(ch.Code, "-", "")
	for _, typed := range []string{ch.Code, strings.ToLower(ch.Code), compact, strings.ReplaceAll(ch.Code, "-", " "), strings.ToLower(compact)} {
		if gen, err := p.Check(ctx, typed); err != nil || gen != 1 {
			t.Errorf("Check(%q) = %d, %v; want 1", typed, gen, err)
		}
	}
	// One wrong symbol fails.
	wrong := []byte(ch.Code)
	wrong[0] = map[bool]byte{true: 'A', false: 'B'}[wrong[0] != 'A']
	gen, err := p.Check(ctx, string(wrong))
	wantBad(t, gen, err)
	st, _ := p.Status(ctx)
	if !st.Generated {
		t.Errorf("Status.Generated = false after Generate")
	}
}

func TestRotateWithGrace(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	p := newPasscodes(t, &memStore{}, clock)
	const old, next = "Old-Walrus-Trumpet-19", "New-Heron-Cabinet-73"
	if _, err := p.Rotate(ctx, next, time.Hour); deploy.ErrorKind(err) != deploy.KindConflict {
		t.Fatalf("Rotate with nothing set: err = %v, want conflict", err)
	}
	if _, err := p.Set(ctx, old); err != nil {
		t.Fatal(err)
	}
	for _, g := range []time.Duration{-time.Second, 31 * 24 * time.Hour} {
		if _, err := p.Rotate(ctx, next, g); deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("Rotate(grace %s) err = %v, want invalid", g, err)
		}
	}
	if _, err := p.Rotate(ctx, "password", time.Hour); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("Rotate(weak) err = %v, want invalid", err)
	}
	start := clock.Now()
	ch, err := p.Rotate(ctx, next, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.PasscodeChange{Generation: 2, GraceUntil: start.Add(time.Hour)}, ch); diff != "" {
		t.Errorf("Rotate change (-want +got):\n%s", diff)
	}
	clock.Advance(time.Hour - time.Second)
	if gen, err := p.Check(ctx, old); err != nil || gen != 1 {
		t.Errorf("old at T+grace-1s: %d, %v; want 1", gen, err)
	}
	if gen, err := p.Check(ctx, next); err != nil || gen != 2 {
		t.Errorf("new at T+grace-1s: %d, %v; want 2", gen, err)
	}
	st, _ := p.Status(ctx)
	if st.PreviousGeneration != 1 || !st.PreviousGraceUntil.Equal(start.Add(time.Hour)) {
		t.Errorf("Status in grace = %+v", st)
	}
	clock.Advance(2 * time.Second)
	gen, err := p.Check(ctx, old)
	wantBad(t, gen, err)
	if gen, err := p.Check(ctx, next); err != nil || gen != 2 {
		t.Errorf("new at T+grace+1s: %d, %v; want 2", gen, err)
	}
	if st, _ := p.Status(ctx); st.PreviousGeneration != 0 {
		t.Errorf("Status after grace still shows previous: %+v", st)
	}
}

func TestRotateEmergencyAndGenerated(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	p := newPasscodes(t, &memStore{}, clock)
	if _, err := p.Set(ctx, canary); err != nil {
		t.Fatal(err)
	}
	// Graceful rotation to a generated code, then an emergency rotation
	// while generation 1 is still in grace: both 1 and 2 retire.
	ch, err := p.Rotate(ctx, "", time.Hour)
	if err != nil || ch.Code == "" || ch.Generation != 2 {
		t.Fatalf("Rotate(generate) = %+v, %v", ch, err)
	}
	if gen, err := p.Check(ctx, strings.ToLower(ch.Code)); err != nil || gen != 2 {
		t.Errorf("generated code from Rotate: %d, %v", gen, err)
	}
	ch, err = p.Rotate(ctx, "Third-Badger-Window-55", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.PasscodeChange{Generation: 3, Retired: []int{1, 2}}, ch); diff != "" {
		t.Errorf("emergency Rotate (-want +got):\n%s", diff)
	}
	gen, err := p.Check(ctx, canary)
	wantBad(t, gen, err)
}

func TestCheckConcurrencyCap(t *testing.T) {
	store := &memStore{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	cfg := auth.DefaultPasscodeConfig()
	cfg.Params, cfg.MaxConcurrent, cfg.MaxWaiting = testParams(), 1, 1
	p, err := auth.NewPasscodes(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { _, err := p.Check(context.Background(), canary); first <- err }()
	<-store.entered // the first check holds the only slot

	ctx, cancel := context.WithCancel(t.Context())
	second := make(chan error, 1)
	go func() { _, err := p.Check(ctx, canary); second <- err }()
	waitFor(t, func() bool { _, w := p.Load(); return w == 1 })

	if _, err := p.Check(t.Context(), canary); err != auth.ErrBusy {
		t.Errorf("third Check err = %v, want ErrBusy", err)
	}
	if deploy.ErrorKind(auth.ErrBusy) != deploy.KindThrottled {
		t.Errorf("ErrBusy kind = %q, want throttled", deploy.ErrorKind(auth.ErrBusy))
	}
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter err = %v, want context.Canceled", err)
	}
	close(store.block)
	if err := <-first; !auth.IsBadPasscode(err) {
		t.Errorf("first Check err = %v, want ErrBadPasscode", err)
	}
	if r, w := p.Load(); r != 0 || w != 0 {
		t.Errorf("Load after all done = %d running, %d waiting", r, w)
	}
}

// TestCheckDuringRotation: many parallel checks, right and wrong, while
// the passcode rotates; a wrong one never passes.
func TestCheckDuringRotation(t *testing.T) {
	ctx := t.Context()
	cfg := auth.DefaultPasscodeConfig()
	cfg.Params, cfg.MaxConcurrent, cfg.MaxWaiting = testParams(), 4, 1000
	p, err := auth.NewPasscodes(&memStore{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "Alpha-Marmot-Violin-31", "Bravo-Puffin-Kettle-62"
	if _, err := p.Set(ctx, a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			in := []string{a, b, "Wrong-Horse-Battery-00"}[i%3]
			gen, err := p.Check(ctx, in)
			if in == "Wrong-Horse-Battery-00" && err == nil {
				t.Errorf("wrong passcode accepted as generation %d", gen)
			}
			if err != nil && !auth.IsBadPasscode(err) {
				t.Errorf("unexpected error %v", err)
			}
		})
		if i == 100 {
			if _, err := p.Rotate(ctx, b, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
}

// TestCanaryNotOnDisk: set a passcode on the real SQLite store, check it,
// close the store, and search every byte of every file it left (database,
// -wal, -shm) for the plaintext.
func TestCanaryNotOnDisk(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	p := newPasscodes(t, db, newClock())
	if _, err := p.Set(ctx, canary); err != nil {
		t.Fatal(err)
	}
	if gen, err := p.Check(ctx, canary); err != nil || gen != 1 {
		t.Fatalf("Check on SQLite = %d, %v", gen, err)
	}
	if _, err := p.Check(ctx, canary+"x"); !auth.IsBadPasscode(err) {
		t.Fatalf("wrong passcode on SQLite: %v", err)
	}
	// Grep while open (WAL and SHM exist now) and again after close.
	grepTree(t, dir, canary)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	grepTree(t, dir, canary)
}

// grepTree fails the test if needle (in any form secrettest knows) is in
// any file under dir, or if there is no file to search.
func grepTree(t *testing.T, dir, needle string) {
	t.Helper()
	if hits := secrettest.FilesWith(t, dir, needle); len(hits) > 0 {
		t.Errorf("the secret is in %q", hits)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
