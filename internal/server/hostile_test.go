//go:build unix

package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/netlimit"
	"github.com/imprint-osd/imprint/internal/server"
)

// hostileScale is the size of the attack of TestHostileNetwork and the
// open-file limit of the server under attack.
type hostileScale struct {
	Idle, SlowBodies int
	ServerNoFile     uint64
	HeaderTimeout    time.Duration
	BodyGrace        time.Duration
}

// The unit suite runs a tenth of issue 9's attack against a server with a
// tenth of its descriptors: 2,200 connections against 1,500 descriptors
// stop a server without connection caps. Opening them under the race
// detector on two cores takes longer than the default header timeout, so
// the server waits 30s for headers and 12s for bodies here: the test is
// about the caps (the timeouts have their own tests). IMPRINT_HOSTILE=full
// (bench/hostile.sh) runs the size, 20,000 idle connections and
// 1,000 slow bodies, against a server with 20,000 descriptors and the
// default limits.
func scale() hostileScale {
	if os.Getenv("IMPRINT_HOSTILE") == "full" {
		d := server.DefaultLimits()
		return hostileScale{Idle: 20000, SlowBodies: 1000, ServerNoFile: 20000, HeaderTimeout: d.HeaderTimeout, BodyGrace: d.BodyGrace}
	}
	return hostileScale{Idle: 2000, SlowBodies: 200, ServerNoFile: 1500, HeaderTimeout: 30 * time.Second, BodyGrace: 12 * time.Second}
}

// hostileChild is the configuration handed to the server process.
type hostileChild struct {
	Dir                      string
	NoFile                   uint64
	HeaderTimeout, BodyGrace time.Duration
}

type hostileReady struct{ API, Boot, Socket string }

// hostileStats are the server's connection counters: each port's, and
// both together.
type hostileStats struct {
	Ports map[string]netlimit.Stats
	Both  netlimit.BudgetStats
}

// TestHostileServerProcess is the server of TestHostileNetwork, run in its
// own process so that it has its own descriptor table and limit. It does
// nothing in a normal test run.
func TestHostileServerProcess(t *testing.T) {
	env := os.Getenv("IMPRINT_HOSTILE_CHILD")
	if env == "" {
		return
	}
	var hc hostileChild
	if err := json.Unmarshal([]byte(env), &hc); err != nil {
		t.Fatal(err)
	}
	lim := syscall.Rlimit{Cur: hc.NoFile, Max: hc.NoFile}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.BootListen = hc.Dir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.PasscodeArgon2 = testArgon2
	cfg.Limits.HeaderTimeout, cfg.Limits.BodyGrace = hc.HeaderTimeout, hc.BodyGrace
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	err := server.Run(ctx, cfg, server.Deps{Log: log}, func(s *server.Server) {
		report(hostileReady{API: s.APIAddr().String(), Boot: s.BootAddr().String(), Socket: s.Socket()})
		go func() { // each line asks for the connection counters
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				api, boot := s.ConnStats()
				report(hostileStats{Ports: map[string]netlimit.Stats{"API": api, "boot port": boot}, Both: s.ConnBudget()})
			}
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// helper is this test binary run as another process for one Test…Process
// function, with its configuration in $IMPRINT_HOSTILE_CHILD: the server
// under attack, or an attacker (each process has its own descriptors).
type helper struct {
	in    io.WriteCloser
	lines chan string
}

func startHelper(t *testing.T, test string, cfg any) *helper {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), "IMPRINT_HOSTILE_CHILD="+string(b))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s did not stop", test)
		}
	})
	h := &helper{in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), helperMarker); ok {
				h.lines <- line
			}
		}
		close(h.lines)
	}()
	return h
}

// helperMarker starts the lines a helper process reports on.
const helperMarker = "HOSTILE-HELPER "

// report prints a line for the parent of a helper process.
func report(v any) {
	b, _ := json.Marshal(v)
	fmt.Printf("%s%s\n", helperMarker, b)
}

// await decodes the helper's next report into v.
func (h *helper) await(t *testing.T, v any, timeout time.Duration) {
	t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			t.Fatal("helper process ended")
		}
		if err := json.Unmarshal([]byte(line), v); err != nil {
			t.Fatal(err)
		}
	case <-time.After(timeout):
		t.Fatal("helper process did not report")
	}
}

// hostileAttack is the configuration of an attacker process: n idle
// connections to target (on the boot port, every other one after one
// request), from address block 127.block.x.y.
type hostileAttack struct {
	Target string
	Boot   bool
	N      int
	Block  int
}

// TestHostileAttackerProcess holds idle connections for TestHostileNetwork
// in its own process (20,000 are more than a process may have here). It
// reports once they are open, again (how many the server still holds) for
// each line on its standard input, and ends when that closes. It does
// nothing in a normal test run.
func TestHostileAttackerProcess(t *testing.T) {
	env := os.Getenv("IMPRINT_HOSTILE_CHILD")
	if env == "" {
		return
	}
	var ha hostileAttack
	if err := json.Unmarshal([]byte(env), &ha); err != nil {
		t.Fatal(err)
	}
	raiseOwnNoFile(t, uint64(ha.N+500))
	a := &attacker{conns: map[string][]net.Conn{}}
	defer a.closeAll()
	parallel(ha.N, 64, func(i int) {
		d := net.Dialer{LocalAddr: attackAddr(ha.Block, i), Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", ha.Target)
		if err != nil {
			a.fails.Add(1)
			return
		}
		kind := "idle"
		if ha.Boot && i%2 == 1 {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				io.Copy(io.Discard, resp.Body)
			}
			c.SetDeadline(time.Time{})
			kind = "keep-alive"
		}
		a.keep(kind, c)
	})
	report(map[string]int64{"fails": a.fails.Load()})
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		held := map[string]int64{}
		for kind, cs := range a.conns {
			held[kind] = int64(len(cs))
			held[kind+" held"] = int64(stillOpen(cs))
		}
		report(held)
	}
}

// attacker holds the connections of the attack.
type attacker struct {
	mu    sync.Mutex
	conns map[string][]net.Conn // by kind
	fails atomic.Int64
}

func (a *attacker) keep(kind string, c net.Conn) {
	a.mu.Lock()
	a.conns[kind] = append(a.conns[kind], c)
	a.mu.Unlock()
}

func (a *attacker) closeAll() {
	for _, cs := range a.conns {
		for _, c := range cs {
			c.Close()
		}
	}
}

// open runs n jobs on workers goroutines.
func parallel(n, workers int, job func(i int)) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				job(i)
			}
		})
	}
	wg.Wait()
}

// attackAddr spreads the attack over addresses, 50 connections each (under
// the per-address cap, so that the global cap is what is tested).
func attackAddr(block, i int) *net.TCPAddr {
	a := i / 50
	return &net.TCPAddr{IP: net.IPv4(127, byte(block), byte(a/250), byte(a%250+1))}
}

// stillOpen counts the connections the server has not closed.
func stillOpen(cs []net.Conn) int {
	var n atomic.Int64
	parallel(len(cs), 64, func(i int) {
		c := cs[i]
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(make([]byte, 512))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			n.Add(1)
		}
	})
	return int(n.Load())
}

func raiseOwnNoFile(t *testing.T, need uint64) {
	t.Helper()
	var r syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	if r.Cur >= need {
		return
	}
	r.Cur, r.Max = need, max(r.Max, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatalf("the attack needs %d descriptors in the test process: setrlimit: %v (run as root, or raise the hard limit)", need, err)
	}
}

// TestHostileNetwork is issue 9's attack: idle connections on the API and
// boot ports and slow login bodies, more than the server has descriptors.
// While they are held, /healthz, a passcode login from a new address, a
// machine that had authenticated and the admin socket must each answer
// within a second, and the slow bodies must be cut.
func TestHostileNetwork(t *testing.T) {
	sc := scale()
	raiseOwnNoFile(t, uint64(sc.SlowBodies+1000))
	dir := t.TempDir()
	var addrs hostileReady
	srv := startHelper(t, "TestHostileServerProcess", hostileChild{Dir: dir, NoFile: sc.ServerNoFile,
		HeaderTimeout: sc.HeaderTimeout, BodyGrace: sc.BodyGrace})
	srv.await(t, &addrs, 2*time.Minute)
	pem, err := os.ReadFile(server.CACertPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	_, apiPort, _ := net.SplitHostPort(addrs.API)
	apiURL := "https://localhost:" + apiPort
	client := func(src string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsCfg, DisableKeepAlives: true,
			DialContext: func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) },
		}}
	}
	admin := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addrs.Socket)
		}}}
	do := func(c *http.Client, method, url, tok, body string) (int, error) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if strings.HasSuffix(url, "/v1/auth/token") && resp.StatusCode == http.StatusOK {
			var tok tokenAnswer
			json.NewDecoder(resp.Body).Decode(&tok)
			return resp.StatusCode, errors.New(tok.Token) // the token, for the caller
		}
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	const passcode = "Correct-Horse-Battery-42"
	if st, err := do(admin, "PUT", "http://imprint/admin/v1/passcode", "", `{"passcode":"`+passcode+`"}`); st != http.StatusOK {
		t.Fatalf("set passcode: %d %v", st, err)
	}
	loginBody := `{"method":"passcode","passcode":"` + passcode + `","device":{"uuid":"6a1f0d2e-6b4c-4a57-9d1e-2f4c8b0a9e11"}}`
	login := func(src string) (string, error) {
		st, err := do(client(src), "POST", apiURL+"/v1/auth/token", "", loginBody)
		if st != http.StatusOK {
			return "", fmt.Errorf("login: %d %v", st, err)
		}
		return err.Error(), nil
	}
	// A machine that authenticated before the attack.
	tok, err := login("127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := do(client("127.0.0.2"), "GET", apiURL+"/v1/tasksequences", tok, ""); st != http.StatusOK {
		t.Fatalf("machine before the attack: %d %v", st, err)
	}

	// The attack: idle connections, half on each port (on the boot port
	// half of those after one request: idle keep-alives), each half held
	// by its own process; then the slow bodies, so that all are held when
	// the probes run.
	a := &attacker{conns: map[string][]net.Conn{}}
	t.Cleanup(a.closeAll)
	start := time.Now()
	apiIdle := startHelper(t, "TestHostileAttackerProcess", hostileAttack{Target: addrs.API, N: sc.Idle / 2, Block: 1})
	bootIdle := startHelper(t, "TestHostileAttackerProcess", hostileAttack{Target: addrs.Boot, Boot: true, N: sc.Idle / 2, Block: 2})
	for _, h := range []*helper{apiIdle, bootIdle} {
		var r map[string]int64
		h.await(t, &r, 2*time.Minute)
		a.fails.Add(r["fails"])
	}
	idleOpened := time.Now()
	parallel(sc.SlowBodies, 32, func(i int) {
		d := &net.Dialer{LocalAddr: attackAddr(3, i), Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addrs.API, tlsCfg)
		if err != nil {
			a.fails.Add(1)
			return
		}
		fmt.Fprintf(c, "POST /v1/auth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"method\":\"passcode\",")
		a.keep("slow body", c)
	})
	bodiesSent := time.Now()
	t.Logf("attack: %d idle connections opened in %v, then %d slow bodies sent in %v (%d connections refused while being made)",
		sc.Idle, idleOpened.Sub(start).Round(time.Millisecond), sc.SlowBodies, bodiesSent.Sub(idleOpened).Round(time.Millisecond), a.fails.Load())

	// While the attack holds: each must answer within a second.
	probes := []struct {
		name string
		run  func() error
	}{
		{"API /healthz from a new address", func() error {
			_, err := do(client("127.0.0.3"), "GET", apiURL+"/healthz", "", "")
			return err
		}},
		{"boot /healthz from a new address", func() error {
			_, err := do(client("127.0.0.3"), "GET", "http://"+addrs.Boot+"/healthz", "", "")
			return err
		}},
		{"passcode login from a new address", func() error { _, err := login("127.0.0.4"); return err }},
		{"authenticated machine, new connection", func() error {
			st, err := do(client("127.0.0.2"), "GET", apiURL+"/v1/tasksequences", tok, "")
			if err == nil && st != http.StatusOK {
				err = fmt.Errorf("status %d", st)
			}
			return err
		}},
		{"admin socket /admin/v1/info", func() error {
			st, err := do(admin, "GET", "http://imprint/admin/v1/info", "", "")
			if err == nil && st != http.StatusOK {
				err = fmt.Errorf("status %d", st)
			}
			return err
		}},
	}
	for _, p := range probes {
		t0 := time.Now()
		err := p.run()
		took := time.Since(t0)
		t.Logf("during the attack: %s: %v", p.name, took.Round(time.Millisecond))
		if err != nil || took > time.Second {
			t.Errorf("%s: %v after %v; want an answer within 1s", p.name, err, took)
		}
	}
	fmt.Fprintln(srv.in, "stats")
	var stats hostileStats
	srv.await(t, &stats, time.Minute)
	// Both ports together, each connection perhaps with a file open, and
	// 256 descriptors kept (server/limits.go).
	budget := int(sc.ServerNoFile-256) / 2
	for _, name := range []string{"API", "boot port"} {
		st := stats.Ports[name]
		t.Logf("server, %s: %d connections held (at most %d), %d accepted, %d refused, %d idle ones closed to make room, %d authenticated",
			name, st.Held, st.Peak, st.Accepted, st.Refused, st.Evicted, st.Protected)
		if capped := min(budget, server.DefaultLimits().MaxConns); st.Peak > capped {
			t.Errorf("server, %s: held %d connections at once, over its cap of %d", name, st.Peak, capped)
		}
	}
	t.Logf("server, both ports: %d connections held (at most %d) of %d", stats.Both.Held, stats.Both.Peak, stats.Both.Max)
	if stats.Both.Max != budget || stats.Both.Peak > budget {
		t.Errorf("server, both ports: held %d connections at once, cap %d; want a cap of %d", stats.Both.Peak, stats.Both.Max, budget)
	}
	for _, h := range []struct {
		name string
		*helper
	}{{"API", apiIdle}, {"boot port", bootIdle}} {
		fmt.Fprintln(h.in, "count")
		var r map[string]int64
		h.await(t, &r, time.Minute)
		for _, kind := range []string{"idle", "keep-alive"} {
			if r[kind] > 0 {
				t.Logf("%s, %s connections: %d of %d not closed by the server (held, or queued in the kernel)", h.name, kind, r[kind+" held"], r[kind])
			}
		}
	}
	t.Logf("slow bodies: %d of %d not closed by the server", stillOpen(a.conns["slow body"]), len(a.conns["slow body"]))

	// The slow bodies are cut after the grace.
	deadline := bodiesSent.Add(sc.BodyGrace + 20*time.Second)
	for {
		open := stillOpen(a.conns["slow body"])
		if open == 0 {
			t.Logf("every slow body cut %v after the last was sent (grace %v)", time.Since(bodiesSent).Round(100*time.Millisecond), sc.BodyGrace)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d slow bodies still held %v after they were sent", open, time.Since(bodiesSent).Round(time.Second))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
