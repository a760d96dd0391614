package auth_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/auth"
)

func newThrottle(t *testing.T, clock *fakeClock, edit func(*auth.ThrottleConfig)) *auth.Throttle {
	t.Helper()
	cfg := auth.DefaultThrottleConfig()
	cfg.Now = clock.Now
	if edit != nil {
		edit(&cfg)
	}
	th, err := auth.NewThrottle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// TestThrottleAttackFromOneSource is the scenario: 500 wrong
// passcodes from one source, the clock moving a little per attempt. At most
// 100 are evaluated within the hour, the rest get Retry-After > 0, and a
// technician at another address gets in at once.
func TestThrottleAttackFromOneSource(t *testing.T) {
	for _, tt := range []struct {
		name     string
		edit     func(*auth.ThrottleConfig)
		maxEvals int
	}{
		{"defaults (backoff dominates)", nil, 100},
		{"hourly cap alone", func(c *auth.ThrottleConfig) { c.FreeFailures = 1_000_000 }, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			th := newThrottle(t, clock, tt.edit)
			start := clock.Now()
			evaluated, refused := 0, 0
			for i := range 500 {
				ok, retry := th.Allow("203.0.113.7", fmt.Sprintf("device-%d", i))
				if ok {
					evaluated++
					th.Failure("203.0.113.7", fmt.Sprintf("device-%d", i))
				} else {
					refused++
					if retry <= 0 {
						t.Fatalf("attempt %d refused with Retry-After %s", i, retry)
					}
				}
				clock.Advance(5 * time.Second) // 500 attempts ≈ 42 minutes
			}
			if clock.Now().Sub(start) > time.Hour {
				t.Fatal("test ran past the hour; the count proves nothing")
			}
			if evaluated > tt.maxEvals || evaluated < 5 {
				t.Errorf("%d attempts evaluated in the hour, want between 5 and %d", evaluated, tt.maxEvals)
			}
			if refused == 0 {
				t.Error("nothing was refused")
			}
			// Meanwhile a technician elsewhere is allowed at once, and their
			// success does not help the attacker.
			if ok, _ := th.Allow("198.51.100.20", "laptop-1"); !ok {
				t.Fatal("clean source refused during the attack")
			}
			if att, _ := th.Admit("198.51.100.20", "laptop-1"); att != nil {
				att.Succeed()
			}
			if ok, _ := th.Allow("203.0.113.7", "other"); ok {
				t.Error("attacker allowed after someone else's success")
			}
		})
	}
}

func TestThrottleHourlyCapExact(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, func(c *auth.ThrottleConfig) { c.FreeFailures = 1_000_000 })
	for i := range 100 {
		if ok, _ := th.Allow("192.0.2.1", ""); !ok {
			t.Fatalf("attempt %d refused before the cap", i)
		}
		th.Failure("192.0.2.1", "")
		clock.Advance(time.Second)
	}
	ok, retry := th.Allow("192.0.2.1", "")
	if ok {
		t.Fatal("101st failure within the hour allowed")
	}
	// The first failure's one-minute bucket frees after at most an hour
	// and a minute from it; 100 s have passed.
	if retry <= 55*time.Minute || retry > time.Hour+time.Minute {
		t.Errorf("Retry-After = %s, want just under an hour", retry)
	}
	clock.Advance(retry)
	if ok, _ := th.Allow("192.0.2.1", ""); !ok {
		t.Error("still refused after Retry-After")
	}
}

func TestThrottleBackoffSequence(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, nil)
	var got []time.Duration
	for range 18 {
		ok, retry := th.Allow("192.0.2.9", "")
		if !ok {
			got = append(got, retry)
			clock.Advance(retry)
			if ok, r := th.Allow("192.0.2.9", ""); !ok {
				t.Fatalf("refused again (%s) after waiting Retry-After", r)
			}
		}
		th.Failure("192.0.2.9", "")
	}
	s, m := time.Second, time.Minute
	want := []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 64 * s, 128 * s, 256 * s, 512 * s, 15 * m, 15 * m, 15 * m}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff waits (-want +got):\n%s", diff)
	}
}

// A success resets nothing: not the backoff, not the hourly cap. Before,
// an address that alternated a successful login (anonymous mode on, or a
// technician behind the same NAT) with wrong passcodes got 103 guesses in
// 30 s.
func TestThrottleSuccessNeverResets(t *testing.T) {
	for _, tt := range []struct {
		name    string
		succeed func(*auth.Attempt)
	}{
		{"credential proved", (*auth.Attempt).Succeed},
		{"anonymous login", (*auth.Attempt).Pass},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			th := newThrottle(t, clock, nil)
			evaluated := 0
			for range 1000 { // 1000 rounds of "log in, then guess" in 100 s
				if att, _ := th.Admit("192.0.2.5", "dev-a"); att != nil {
					tt.succeed(att)
				}
				if att, _ := th.Begin("192.0.2.5", "dev-a"); att != nil {
					evaluated++
					att.Fail()
				}
				clock.Advance(100 * time.Millisecond)
			}
			// 5 free, then backoff 1+2+4+8+16+32 s fits 6 more in 100 s.
			if evaluated > 11 {
				t.Errorf("%d guesses evaluated in 100 s between successes, want at most 11", evaluated)
			}
		})
	}
	t.Run("hourly cap", func(t *testing.T) {
		clock := newClock()
		th := newThrottle(t, clock, func(c *auth.ThrottleConfig) { c.FreeFailures = 1_000_000 })
		evaluated := 0
		for range 500 {
			if att, _ := th.Admit("192.0.2.6", ""); att != nil {
				att.Succeed()
			}
			if att, _ := th.Begin("192.0.2.6", ""); att != nil {
				evaluated++
				att.Fail()
			}
			clock.Advance(time.Second)
		}
		if evaluated != 100 {
			t.Errorf("%d guesses evaluated in 500 s between successes, want 100 (the hourly cap)", evaluated)
		}
	})
}

func TestThrottleForgetsAfterQuietPeriod(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, nil)
	for range 7 {
		th.Failure("192.0.2.6", "")
	}
	clock.Advance(time.Hour)
	if ok, _ := th.Allow("192.0.2.6", ""); !ok {
		t.Fatal("refused after an hour of quiet")
	}
	th.Failure("192.0.2.6", "") // counts as the first of a new run
	if ok, _ := th.Allow("192.0.2.6", ""); !ok {
		t.Error("backoff resumed at once instead of starting afresh")
	}
}

// A claimed device id is anyone's to claim: its failures delay only
// sources that failed themselves. Before, failures counted against a
// machine's UUID from other addresses refused 7 of its 16 correct logins.
func TestThrottleClaimedDeviceDelaysOnlyFailedSources(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, nil)
	refused := 0
	for i := range 16 {
		// Attackers at other addresses fail in the machine's name.
		for j := range 6 {
			th.Failure(fmt.Sprintf("10.0.%d.%d", i, j+1), "uuid-1234")
		}
		att, wait := th.Begin("192.0.2.50", "uuid-1234")
		if att == nil {
			refused++
			t.Logf("login %d refused, wait %s", i, wait)
			continue
		}
		att.Succeed()
		clock.Advance(time.Second)
	}
	if refused > 0 {
		t.Errorf("%d of 16 correct logins from a clean address refused because of failures claimed by others", refused)
	}
	// An address that has failed itself meets the device's backoff too:
	// one failure of its own, none of the free ones used up, and still it
	// waits for the device's run of failures.
	th.Failure("10.9.9.9", "")
	if ok, retry := th.Allow("10.9.9.9", "uuid-1234"); ok || retry <= 0 {
		t.Errorf("a failed source claiming the attacked device: Allow = %v, %s; want refused", ok, retry)
	}
	if att, _ := th.Begin("10.9.9.9", "uuid-1234"); att != nil {
		t.Error("Begin admitted a failed source claiming the attacked device")
	}
	if ok, _ := th.Allow("10.9.9.9", "uuid-other"); !ok {
		t.Error("the same source with another device was refused")
	}
}

func TestThrottleIPv6GroupedBy64(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, nil)
	for i := range 6 {
		th.Failure(fmt.Sprintf("[2001:db8:1:2::%x]:4000", i+1), "")
	}
	if ok, _ := th.Allow("2001:db8:1:2:ffff::1", ""); ok {
		t.Error("another address in the same /64 was allowed")
	}
	if ok, _ := th.Allow("2001:db8:1:3::1", ""); !ok {
		t.Error("an address in another /64 was refused")
	}
	if ok, _ := th.Allow("192.0.2.77:5555", ""); !ok {
		t.Error("an IPv4 source was refused")
	}
}

func TestThrottleGlobalAlert(t *testing.T) {
	clock := newClock()
	var mu sync.Mutex
	var alerts []int
	th := newThrottle(t, clock, func(c *auth.ThrottleConfig) {
		c.GlobalLimit = 50
		c.Alert = func(n int, w time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			alerts = append(alerts, n)
			if w != time.Minute {
				t.Errorf("alert window = %s", w)
			}
		}
	})
	for i := range 120 { // 120 distinct sources within one minute
		th.Failure(fmt.Sprintf("10.1.%d.%d", i/250, i%250), "")
	}
	clock.Advance(time.Minute)
	for i := range 50 { // exactly the limit: no alert
		th.Failure(fmt.Sprintf("10.2.0.%d", i), "")
	}
	clock.Advance(time.Minute)
	for i := range 51 {
		th.Failure(fmt.Sprintf("10.3.0.%d", i), "")
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{51, 51}, alerts); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
}

func TestThrottleMemoryBound(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, func(c *auth.ThrottleConfig) { c.MaxKeys = 100 })
	for i := range 6 {
		th.Failure("192.0.2.200", "")
		_ = i
	}
	// A flood of invented device ids from one source must not evict the
	// source's record.
	for i := range 1000 {
		th.Failure("192.0.2.200", fmt.Sprintf("fake-%d", i))
	}
	s, d := th.Tracked()
	if s != 1 || d != 100 {
		t.Errorf("tracked = %d sources, %d devices; want 1, 100", s, d)
	}
	if ok, _ := th.Allow("192.0.2.200", "brand-new"); ok {
		t.Error("source record was evicted by device-id flooding")
	}
	for i := range 1000 {
		th.Failure(fmt.Sprintf("10.%d.%d.1", i/250, i%250), "")
	}
	if s, _ := th.Tracked(); s != 100 {
		t.Errorf("tracked sources = %d, want 100", s)
	}
}

func TestNewThrottleRejectsNegative(t *testing.T) {
	for name, edit := range map[string]func(*auth.ThrottleConfig){
		"FreeFailures":  func(c *auth.ThrottleConfig) { c.FreeFailures = -1 },
		"BaseDelay":     func(c *auth.ThrottleConfig) { c.BaseDelay = -time.Second },
		"MaxKeys":       func(c *auth.ThrottleConfig) { c.MaxKeys = -5 },
		"MaxDelay<Base": func(c *auth.ThrottleConfig) { c.BaseDelay, c.MaxDelay = time.Hour, time.Minute },
		"GlobalWindow":  func(c *auth.ThrottleConfig) { c.GlobalWindow = -1 },
		"HourlyLimit":   func(c *auth.ThrottleConfig) { c.HourlyLimit = -100 },
		"GlobalLimit":   func(c *auth.ThrottleConfig) { c.GlobalLimit = -1 },
		"Window":        func(c *auth.ThrottleConfig) { c.Window = -time.Hour },
		"Forget":        func(c *auth.ThrottleConfig) { c.Forget = -time.Hour },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := auth.DefaultThrottleConfig()
			edit(&cfg)
			if _, err := auth.NewThrottle(cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// PC-6: parallel guesses cannot all pass a check meant to let them through
// one at a time. With the clock frozen, 200 concurrent attempts from one
// source get exactly FreeFailures evaluations; the rest wait.
func TestThrottleBeginIsAtomicUnderConcurrency(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, nil)
	const n = 200
	var admitted atomic.Int32
	var begun, ended sync.WaitGroup
	start, evaluate := make(chan struct{}), make(chan struct{})
	for i := range n {
		begun.Add(1)
		ended.Add(1)
		go func() {
			defer ended.Done()
			<-start
			att, wait := th.Begin("198.51.100.7", fmt.Sprintf("dev-%d", i))
			begun.Done()
			if att == nil {
				if wait <= 0 {
					t.Errorf("refused with wait %v", wait)
				}
				return
			}
			admitted.Add(1)
			// Every attempt is still being evaluated when the last one
			// asks: the worst case for a check-then-count throttle.
			<-evaluate
			att.Fail()
			att.Fail() // a second end counts nothing
		}()
	}
	close(start)
	begun.Wait()
	close(evaluate)
	ended.Wait()
	if got := admitted.Load(); got != 5 {
		t.Errorf("%d of %d parallel guesses were evaluated, want 5 (FreeFailures)", got, n)
	}
	if att, _ := th.Begin("198.51.100.7", ""); att != nil {
		t.Error("admitted after the free failures were used up")
	}
}

// An attempt that ends without being evaluated (Abandon) or succeeds
// frees its place; a success forgets no failure.
func TestThrottleAttemptEnds(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, nil)
	var held []*auth.Attempt
	for range 5 {
		att, _ := th.Begin("198.51.100.8", "")
		if att == nil {
			t.Fatal("refused within the free failures")
		}
		held = append(held, att)
	}
	if att, wait := th.Begin("198.51.100.8", ""); att != nil || wait <= 0 {
		t.Fatalf("sixth attempt while five are in flight: admitted %v, wait %v", att != nil, wait)
	}
	held[0].Abandon()
	sixth, _ := th.Begin("198.51.100.8", "")
	if sixth == nil {
		t.Fatal("an abandoned attempt did not free its place")
	}
	for _, a := range held[1:] {
		a.Fail()
	}
	sixth.Succeed() // four failures so far: one more is free
	fifth, _ := th.Begin("198.51.100.8", "")
	if fifth == nil {
		t.Fatal("a success held its place after it ended")
	}
	fifth.Fail()
	if ok, _ := th.Allow("198.51.100.8", ""); ok {
		t.Error("a success forgot the failures before it")
	}
}

// Admit (certificates, Entra and admin tokens) holds no place: a lab of
// machines behind one address logs in at once; failures still count.
func TestThrottleAdmitHoldsNoPlace(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, nil)
	var held []*auth.Attempt
	for i := range 30 {
		att, wait := th.Admit("203.0.113.9", fmt.Sprintf("pc-%d", i))
		if att == nil {
			t.Fatalf("machine %d behind the address refused (wait %v)", i, wait)
		}
		held = append(held, att)
	}
	for _, a := range held {
		a.Fail()
	}
	if att, wait := th.Admit("203.0.113.9", ""); att != nil || wait <= 0 {
		t.Errorf("after 30 failures: admitted %v, wait %v; want the backoff", att != nil, wait)
	}
}

// The guess cap holds against many addresses and mixed methods
// (security.md PC-6, issue 9): 50 addresses each try every two seconds for a
// simulated two hours, mixing guesses that run Argon2 (passcode, anonymous
// while off, malformed bodies: Begin) with Entra tokens that do not
// (Admit). No rolling hour evaluates more failed guesses than
// GlobalHourlyLimit, yet the budget keeps flowing (nobody is locked out
// for good); a technician at an address that proved the passcode before
// gets in at the first try every time, and so does one at a new address
// (the reserve kept for clean sources).
func TestThrottleManySourcesSimulatedHours(t *testing.T) {
	for _, tt := range []struct {
		name  string
		entra int // every how many seconds an address sends an Entra token instead (0: never)
	}{
		{"passcode guesses only", 0},
		{"mixed methods", 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			th := newThrottle(t, clock, nil)
			cfg := auth.DefaultThrottleConfig()
			// The technician's machine logged in yesterday.
			if att, _ := th.Begin("198.51.100.20", "laptop-1"); att != nil {
				att.Succeed()
			} else {
				t.Fatal("technician refused on a quiet server")
			}
			clock.Advance(24 * time.Hour)

			const seconds = 2 * 3600
			perSecond := make([]int, seconds)
			srcs, devs := make([]string, 50), make([]string, 50)
			for a := range 50 {
				srcs[a], devs[a] = fmt.Sprintf("127.0.0.%d", a+1), fmt.Sprintf("4c4c4544-%04d", a)
			}
			techTries, techRefused, newRefused := 0, 0, 0
			for sec := 0; sec < seconds; sec += 2 {
				for a := range 50 {
					src, dev := srcs[a], devs[a]
					if tt.entra > 0 && (sec+a)%tt.entra == 0 { // no Argon2, holds no place
						if att, _ := th.Admit(src, dev); att != nil {
							att.Fail()
						}
						continue
					}
					if att, _ := th.Begin(src, dev); att != nil {
						perSecond[sec]++
						att.Fail()
					}
				}
				if sec%300 == 150 { // every five minutes the technician logs in
					techTries++
					if att, wait := th.Begin("198.51.100.20", "laptop-1"); att != nil {
						att.Succeed()
					} else {
						techRefused++
						t.Logf("technician refused at %ds (wait %s)", sec, wait)
					}
					// and a colleague at an address never seen before,
					// after the attackers had their go this second.
					if att, wait := th.Begin(fmt.Sprintf("198.51.100.%d", 100+techTries), ""); att != nil {
						att.Succeed()
					} else {
						newRefused++
						t.Logf("technician at a new address refused at %ds (wait %s)", sec, wait)
					}
				}
				clock.Advance(2 * time.Second)
			}
			sum := make([]int, seconds+1) // sum[i]: guesses before second i
			for i, c := range perSecond {
				sum[i+1] = sum[i] + c
			}
			worst, first := 0, sum[3600]
			for start := 0; start+3600 <= seconds; start++ {
				worst = max(worst, sum[start+3600]-sum[start])
			}
			t.Logf("evaluated failed guesses: %d in the first hour, at most %d in any rolling hour (cap %d); technician refused %d of %d, at a new address %d of %d",
				first, worst, cfg.GlobalHourlyLimit, techRefused, techTries, newRefused, techTries)
			if worst > cfg.GlobalHourlyLimit {
				t.Errorf("%d failed guesses evaluated in one rolling hour, cap %d", worst, cfg.GlobalHourlyLimit)
			}
			if tt.entra == 0 && worst < cfg.GlobalHourlyLimit*3/4 {
				// The attackers' own Entra failures keep them in backoff in
				// the mixed run; with guesses only, the budget must flow.
				t.Errorf("only %d guesses in the worst hour: the global budget stopped flowing (a lockout)", worst)
			}
			if techRefused > 0 {
				t.Errorf("the technician at a known-good address was refused %d of %d times", techRefused, techTries)
			}
			if newRefused > 0 {
				t.Errorf("a technician at a new address was refused %d of %d times: the clean reserve did not hold", newRefused, techTries)
			}
		})
	}
}

// Strangers share the global budget; once it is spent each waits its
// turn (Retry-After says when), while a known-good source that fails
// loses its preference until the failure ages out.
func TestThrottleGlobalBudget(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, func(c *auth.ThrottleConfig) { c.GlobalHourlyLimit = 20 }) // burst 10, then one per 6 min
	if att, _ := th.Begin("192.0.2.99", ""); att != nil {
		att.Succeed() // a token held by a success comes back
	}
	for i := range 10 {
		att, wait := th.Begin(fmt.Sprintf("10.0.0.%d", i+1), "")
		if att == nil {
			t.Fatalf("guess %d of the burst refused (wait %s)", i, wait)
		}
		att.Fail()
	}
	att, wait := th.Begin("10.0.1.1", "")
	if att != nil || wait <= 0 || wait > 6*time.Minute {
		t.Fatalf("a stranger after the burst: admitted %v, wait %s; want refused for up to 6 min", att != nil, wait)
	}
	// A guess turned away by a full Argon2 queue gives its token back.
	clock.Advance(wait)
	busy, _ := th.Begin("10.0.1.2", "")
	if busy == nil {
		t.Fatal("refused after Retry-After")
	}
	busy.Busy()
	if att, _ := th.Begin("10.0.1.3", ""); att == nil {
		t.Fatal("a busy refusal kept its global token")
	} else {
		att.Fail()
	}
	// The known-good source goes straight through, once; failing, it
	// waits with everyone else.
	good, _ := th.Begin("192.0.2.99", "")
	if good == nil {
		t.Fatal("known-good source refused while the budget is spent")
	}
	good.Fail()
	if att, _ := th.Begin("192.0.2.99", ""); att != nil {
		t.Error("a known-good source that just failed skipped the global delay again")
	}
	// An anonymous login makes no one known good.
	anon, _ := th.Admit("10.0.2.1", "")
	anon.Pass()
	if att, _ := th.Begin("10.0.2.1", ""); att != nil {
		t.Error("an anonymous login bought a guess past the global delay")
	}
}

// A request turned away because the Argon2 queue is full counts against
// its sender: it cannot be repeated for free.
func TestThrottleBusyCountsAgainstTheSender(t *testing.T) {
	clock := newClock()
	th := newThrottle(t, clock, nil)
	for i := range 5 {
		att, _ := th.Begin("203.0.113.50", "dev-b")
		if att == nil {
			t.Fatalf("attempt %d refused within the free failures", i)
		}
		att.Busy()
	}
	if att, wait := th.Begin("203.0.113.50", "dev-b"); att != nil || wait <= 0 {
		t.Errorf("after five busy refusals: admitted %v, wait %s; want the backoff", att != nil, wait)
	}
}
