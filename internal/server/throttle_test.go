package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/auth/entra/entratest"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// testClock is a settable clock for the server's throttle.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// clientFrom is an API client whose connections leave from the loopback
// address ip (any 127.0.0.0/8 address works on Linux), so the server sees
// a distinct source without trusting X-Forwarded-For.
func (ts *testServer) clientFrom(ip string) *http.Client {
	base := ts.api.Transport.(*http.Transport).TLSClientConfig
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{
		DialContext:     d.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: base.RootCAs},
	}}
}

// post sends a login body and returns the status and Retry-After.
func post(t *testing.T, ts *testServer, c *http.Client, body string) (int, string) {
	t.Helper()
	resp, err := c.Post(ts.apiURL("/v1/auth/token"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Errorf("login: %v", err)
		return 0, ""
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// The "Shown by" of issue 9: 50 source addresses on loopback attack the
// real server for a simulated hour, mixing methods: wrong passcodes,
// anonymous while it is off, malformed bodies (all three run Argon2) and
// Entra ID with bad tokens (which does not). Failed guesses evaluated
// (the 401s of requests that ran Argon2) stay at or under the global cap,
// and every five minutes a technician at an address that logged in before
// gets in at the first try, and so does one at a new address.
func TestThrottleManyAddressesMixedMethodsOverAnHour(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated hour of 50 addresses (several seconds)")
	}
	clock := newTestClock()
	iss := entratest.NewIssuer(t, testTenant)
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.Throttle.Now = clock.Now
	})
	const code = "Correct-Horse-Battery-42"
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": code}, nil)
	setEntra(t, ts, entraConfig(iss))
	if r := ts.adminJSON(t, "PUT", "/admin/v1/security/passcode-alongside", map[string]bool{"on": true}, nil); r.StatusCode != 200 {
		t.Fatalf("allow the passcode alongside Entra ID: %d", r.StatusCode)
	}
	techLogin := fmt.Sprintf(`{"method":"passcode","passcode":%q,"device":{"uuid":"4c4c4544-7ec0-0000-0000-000000000001"}}`, code)
	tech := ts.clientFrom("127.0.0.200")
	if got, _ := post(t, ts, tech, techLogin); got != 200 {
		t.Fatalf("technician before the attack: %d", got)
	}
	clock.Advance(time.Hour)

	attackers := make([]*http.Client, 50)
	for i := range attackers {
		attackers[i] = ts.clientFrom(fmt.Sprintf("127.0.0.%d", i+2))
	}
	bodies := []struct {
		body  string
		argon bool
	}{
		{`{"method":"passcode","passcode":"Wrong-Horse-Battery-%d","device":{"uuid":"uuid-%d"}}`, true},
		{`{"method":"anonymous","device":{"uuid":"uuid-%d-%d"}}`, true},
		{`{"method":"entra","accessToken":"eyJhbGciOiJub25lIn0.bad-%d.%d","device":{"uuid":"u"}}`, false},
		{`{"method": passcode %d %d`, true},
	}
	const step, rounds = time.Minute, 60 // one hour: every address tries once a minute
	var evaluated, entraFailed, refused atomic.Int64
	techTries, techRefused, newRefused := 0, 0, 0
	for round := range rounds {
		var wg sync.WaitGroup
		for i, c := range attackers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := bodies[(round+i)%len(bodies)]
				status, _ := post(t, ts, c, fmt.Sprintf(b.body, round, i))
				switch {
				case status == 401 && b.argon:
					evaluated.Add(1)
				case status == 401:
					entraFailed.Add(1)
				case status == 429:
					refused.Add(1)
				case status == 400 || status == 0:
				default:
					t.Errorf("attacker got %d", status)
				}
			}()
		}
		wg.Wait()
		if round%5 == 2 { // every five minutes
			techTries++
			if got, retry := post(t, ts, tech, techLogin); got != 200 {
				techRefused++
				t.Logf("technician refused at %s: %d, Retry-After %s", time.Duration(round)*step, got, retry)
			}
			// and a colleague at an address the server has never seen
			if got, retry := post(t, ts, ts.clientFrom(fmt.Sprintf("127.0.0.%d", 100+techTries)), techLogin); got != 200 {
				newRefused++
				t.Logf("technician at a new address refused at %s: %d, Retry-After %s", time.Duration(round)*step, got, retry)
			}
		}
		clock.Advance(step)
	}
	limit := auth.DefaultThrottleConfig().GlobalHourlyLimit
	t.Logf("50 addresses, 1 h: %d failed guesses evaluated (cap %d), %d Entra failures, %d refused with 429; technician refused %d of %d, at a new address %d of %d",
		evaluated.Load(), limit, entraFailed.Load(), refused.Load(), techRefused, techTries, newRefused, techTries)
	if n := evaluated.Load(); n > int64(limit) {
		t.Errorf("%d failed guesses evaluated in an hour, cap %d", n, limit)
	}
	if techRefused > 0 {
		t.Errorf("the technician at a known-good address was refused %d of %d times", techRefused, techTries)
	}
	if newRefused > 0 {
		t.Errorf("a technician at a new address was refused %d of %d times", newRefused, techTries)
	}
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[r.Message]++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.msgs {
		n += c
	}
	return n
}

// Refusals cost O(1) and write nothing per request (issue 9: one address
// made 1,203 audit rows a second): 500 refused logins add no audit row
// and no log line; a minute later one audit row says how many there were.
func TestThrottleRefusalsWriteNothingPerRequest(t *testing.T) {
	clock := newTestClock()
	logs := &countingHandler{msgs: map[string]int{}}
	ts := startServerLog(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.Throttle.Now = clock.Now
	}, slog.New(logs))
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	c := ts.clientFrom("127.0.0.9")
	wrong := `{"method":"passcode","passcode":"Wrong-Horse-Battery-42","device":{"uuid":"dev-x"}}`
	for i := range 5 {
		if got, _ := post(t, ts, c, wrong); got != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, got)
		}
	}
	countRows := func() (rows, throttled int, refusals string) {
		var events []deploy.AuditEvent
		ts.do(t, "GET", "/admin/v1/audit?limit=10000", nil, &events)
		for _, e := range events {
			if e.Action == "auth.attempt" {
				rows++
			}
			if e.Outcome == auth.OutcomeThrottled {
				throttled++
				refusals = e.Details["refusals"]
			}
		}
		return rows, throttled, refusals
	}
	rowsBefore, _, _ := countRows()
	logsBefore := logs.total()
	for i := range 500 {
		got, retry := post(t, ts, c, wrong)
		if got != 429 || retry == "" {
			t.Fatalf("refusal %d: %d Retry-After %q, want 429 with Retry-After", i, got, retry)
		}
		if n, err := strconv.Atoi(retry); err != nil || n < 1 {
			t.Fatalf("Retry-After %q", retry)
		}
	}
	// A body in the wrong shape is refused as cheaply: the source is in
	// backoff before its body is read.
	if got, _ := post(t, ts, c, "{"+strings.Repeat(" ", 4000)); got != 429 {
		t.Fatalf("malformed body from a throttled source: %d, want 429", got)
	}
	rowsAfter, throttled, _ := countRows()
	if rowsAfter != rowsBefore || throttled != 0 {
		t.Errorf("501 refusals wrote %d audit rows (%d throttled), want none", rowsAfter-rowsBefore, throttled)
	}
	if n := logs.total() - logsBefore; n > 0 {
		t.Errorf("501 refusals wrote %d log lines, want none until the minute is over: %v", n, logs.msgs)
	}
	clock.Advance(time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, throttled, refusals := countRows()
		if throttled == 1 && refusals == "501" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the minute: %d throttled rows, refusals %q; want one row saying 501", throttled, refusals)
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if n := logs.msgs["requests refused by the login throttle"]; n != 1 {
		t.Errorf("%d summary log lines, want 1: %v", n, logs.msgs)
	}
}

// A success never resets failures: with anonymous mode on, an address
// that logs in anonymously between wrong passcodes gets no more guesses
// than one that does not (issue 9: 103 guesses in 30 s).
func TestThrottleAnonymousSuccessBuysNoGuesses(t *testing.T) {
	clock := newTestClock()
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.Throttle.Now = clock.Now
	})
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	ts.adminJSON(t, "PUT", "/admin/v1/security/anonymous", map[string]bool{"on": true}, nil)
	c := ts.clientFrom("127.0.0.10")
	guesses := 0
	for range 200 { // 30 simulated seconds
		if got, _ := post(t, ts, c, `{"method":"anonymous"}`); got != 200 && got != 429 {
			t.Fatalf("anonymous login: %d", got)
		}
		if got, _ := post(t, ts, c, `{"method":"passcode","passcode":"Wrong-Horse-Battery-42"}`); got == 401 {
			guesses++
		}
		clock.Advance(150 * time.Millisecond)
	}
	t.Logf("%d guesses evaluated in 30 s between anonymous logins", guesses)
	// 5 free, then 1+2+4+8 s of backoff fit 4 more in 30 s.
	if guesses > 9 {
		t.Errorf("%d guesses in 30 s between anonymous logins, want at most 9", guesses)
	}
}

// A method that is off still runs Argon2 to refuse at equal cost, so its
// attempts are guesses: they hold a place while Argon2 runs. Before, 40
// parallel "anonymous while off" requests from one address were all
// evaluated at once.
func TestThrottleMethodOffHoldsAPlace(t *testing.T) {
	clock := newTestClock()
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = auth.Argon2Params{Memory: 8 << 10, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32} // slow enough to overlap
		c.Throttle.Now = clock.Now
	})
	c := ts.clientFrom("127.0.0.11")
	const n = 40
	codes := make(chan int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got, _ := post(t, ts, c, `{"method":"anonymous"}`)
			codes <- got
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[401] > 5 {
		t.Errorf("%d of %d parallel refusals of a mode that is off ran Argon2 (%v); want at most 5 (FreeFailures)", count[401], n, count)
	}
	if count[429] == 0 {
		t.Errorf("no parallel attempt was turned away: %v", count)
	}
}

// A request turned away because the Argon2 queue is full counts against
// its sender (issue 9: such refusals were free, so 49 addresses got 132
// guesses evaluated in 76 s). Ten addresses send five guesses each at
// once, more than the 2 running + 32 waiting the queue holds: every
// address has then used its five free failures, whether its guesses were
// evaluated or turned away, and its next attempt waits.
func TestThrottleBusyRefusalsCount(t *testing.T) {
	clock := newTestClock()
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = auth.Argon2Params{Memory: 8 << 10, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32} // slow: the queue fills
		c.Throttle.Now = clock.Now
	})
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	clients := make([]*http.Client, 10)
	var warm sync.WaitGroup
	for i := range clients {
		clients[i] = ts.clientFrom(fmt.Sprintf("127.0.0.%d", 30+i))
		for range 5 { // open the connections first, so the guesses arrive together
			warm.Add(1)
			go func() {
				defer warm.Done()
				if resp, err := clients[i].Get(ts.apiURL("/v1/auth/methods")); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
	}
	warm.Wait()
	wrong := `{"method":"passcode","passcode":"Wrong-Horse-Battery-42"}`
	var wg sync.WaitGroup
	var busy atomic.Int64
	start := make(chan struct{})
	for _, c := range clients {
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if got, _ := post(t, ts, c, wrong); got == 429 {
					busy.Add(1)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	if busy.Load() == 0 {
		t.Fatal("the Argon2 queue never filled: the test shows nothing")
	}
	admitted := 0
	for _, c := range clients {
		if got, _ := post(t, ts, c, wrong); got != 429 {
			admitted++
		}
	}
	if admitted > 0 {
		t.Errorf("%d of 10 addresses got another guess after %d of their attempts were turned away unevaluated", admitted, busy.Load())
	}
}
