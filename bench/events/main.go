// Command events is the load client of bench/events.sh: simulated machines,
// each with its own session and connection, posting a step event every few
// seconds to a running imprint server over HTTPS, and the per-machine iPXE
// script fetched against a static boot file of the same size.
//
//	events -api https://127.0.0.1:PORT -ca CA.crt -machines 1000 -duration 20s
//	events -api https://127.0.0.1:P1,https://127.0.0.1:P2 -ca CA.crt …
//
// With several -api URLs (replicas on one database) machine i logs in and
// starts its run on URL i mod N and sends each event to the next URL in
// turn, as a load balancer without session affinity would.
//
//	events -boot http://127.0.0.1:PORT -static FILE -machines 1000 -conns 200
//	events -boot … -static DIR/FILE -nginx http://127.0.0.1:PORT  (nginx serving DIR)
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tsID is the task sequence bench/events.sh imports.
const tsID = "b0000000-0000-4000-8000-000000000001"

func main() {
	var o options
	flag.StringVar(&o.api, "api", "", "API base URL (https://127.0.0.1:PORT), or several comma-separated (replicas): run the events load")
	flag.StringVar(&o.ca, "ca", "", "the server's CA certificate (PEM)")
	flag.StringVar(&o.boot, "boot", "", "boot port base URL (http://127.0.0.1:PORT): run the boot script load")
	flag.StringVar(&o.static, "static", "", "with -boot: write a static boot file of the script's size here and fetch it too")
	flag.StringVar(&o.nginx, "nginx", "", "with -static: also fetch the file from this URL (nginx serving the file's directory)")
	flag.IntVar(&o.machines, "machines", 1000, "simulated machines")
	flag.DurationVar(&o.interval, "interval", 2*time.Second, "time between one machine's events")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of the measured load")
	flag.IntVar(&o.conns, "conns", 200, "with -boot: concurrent connections")
	flag.IntVar(&o.rounds, "rounds", 3, "with -boot: rounds the duration is cut into, each fetching every target in turn")
	flag.Parse()
	o.apis = strings.Split(o.api, ",")
	var err error
	switch {
	case o.api != "":
		err = o.events(context.Background())
	case o.boot != "":
		err = o.bootLoad(context.Background())
	default:
		err = errors.New("give -api or -boot")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
}

type options struct {
	api, ca, boot, static, nginx string
	apis                         []string // api split at commas
	machines, conns, rounds      int
	interval, duration           time.Duration
}

// source is the loopback address machine i connects from: the server
// limits connections per source address, and a lab has one per machine.
func source(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 1+byte(i>>16), byte(i>>8), byte(i))}
}

// deviceUUID is machine i's SMBIOS UUID.
func deviceUUID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// client is one machine's HTTP client: its own connection, kept alive.
func client(i int, tlsConf *tls.Config) *http.Client {
	d := &net.Dialer{LocalAddr: source(i), Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: tlsConf, MaxIdleConnsPerHost: 1,
		IdleConnTimeout: time.Minute, TLSHandshakeTimeout: 10 * time.Second,
	}}
}

func post(ctx context.Context, c *http.Client, url, token string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(string(b)))
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(ans)))
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(ans, out)
	}
	return resp.StatusCode, nil
}

type machine struct {
	c            *http.Client
	token, runID string
}

// setup logs machine i in and starts its run, retrying what the server
// refuses (a baseline under load may answer 500) for up to a minute.
func (o *options) setup(ctx context.Context, i int, tlsConf *tls.Config) (*machine, int, error) {
	m := &machine{c: client(i, tlsConf)}
	retries := 0
	try := func(f func() error) error {
		deadline := time.Now().Add(time.Minute)
		for {
			err := f()
			if err == nil || time.Now().After(deadline) {
				return err
			}
			retries++
			if retries == 1 {
				fmt.Fprintf(os.Stderr, "machine %d retries after: %v\n", i, err)
			}
			time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
		}
	}
	err := try(func() error {
		var tok struct{ Token string }
		dev := map[string]any{"uuid": deviceUUID(i), "macs": []string{fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i))}}
		_, err := post(ctx, m.c, o.apis[i%len(o.apis)]+"/v1/auth/token", "", map[string]any{"method": "anonymous", "device": dev}, &tok)
		m.token = tok.Token
		return err
	})
	if err != nil {
		return nil, retries, fmt.Errorf("login: %w", err)
	}
	err = try(func() error {
		var run struct{ ID string }
		_, err := post(ctx, m.c, o.apis[i%len(o.apis)]+"/v1/runs", m.token, map[string]any{"taskSequenceId": tsID, "versionNo": 1}, &run)
		m.runID = run.ID
		return err
	})
	if err != nil {
		return nil, retries, fmt.Errorf("start run: %w", err)
	}
	return m, retries, nil
}

func (o *options) events(ctx context.Context) error {
	pem, err := os.ReadFile(o.ca)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no certificate", o.ca)
	}
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "localhost"}

	t0 := time.Now()
	ms := make([]*machine, o.machines)
	var retries atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range ms {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, r, err := o.setup(ctx, i, tlsConf)
			retries.Add(int64(r))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("machine %d: %w", i, err)
			}
			ms[i] = m
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("setup: %d machines logged in and started a run in %.1fs (%d retries of refused requests)\n",
		o.machines, time.Since(t0).Seconds(), retries.Load())

	// Every machine posts one step event per interval, starting at a
	// random moment of the first interval, for the duration.
	var (
		lat    []time.Duration
		errs   = map[string]int{}
		sample string
	)
	end := time.Now().Add(o.interval + o.duration)
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := map[string]int{}
			var first string
			time.Sleep(time.Duration(rand.Int64N(int64(o.interval))))
			tick := time.NewTicker(o.interval)
			defer tick.Stop()
			for n := 0; time.Now().Before(end); n++ {
				typ := "step-start"
				if n%2 == 1 {
					typ = "step-end"
				}
				step := fmt.Sprintf("s%d", n/2)
				ev := []map[string]any{{"type": typ, "stepId": step, "path": step, "name": "Step " + step, "outcome": "succeeded"}}
				start := time.Now()
				code, err := post(ctx, m.c, o.apis[(i+n+1)%len(o.apis)]+"/v1/runs/"+m.runID+"/events", m.token, ev, nil)
				mine = append(mine, time.Since(start))
				if err != nil {
					key := fmt.Sprint(code)
					if code == 0 {
						key = "transport"
					}
					bad[key]++
					if first == "" {
						first = fmt.Sprintf("machine %d: %v", i, err)
					}
				}
				<-tick.C
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			for k, v := range bad {
				errs[k] += v
			}
			if sample == "" {
				sample = first
			}
		}()
	}
	wg.Wait()
	nerr := 0
	for _, v := range errs {
		nerr += v
	}
	slices.Sort(lat)
	fmt.Printf("events: machines %d  every %v  requests %d  errors %d %v  p50 %s  p99 %s  max %s\n",
		o.machines, o.interval, len(lat), nerr, errs, ms2(pct(lat, 50)), ms2(pct(lat, 99)), ms2(pct(lat, 100)))
	if sample != "" {
		fmt.Println("first error:", sample)
	}
	// For the script: one line it can pick fields from.
	fmt.Printf("RESULT machines=%d requests=%d errors=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
		o.machines, len(lat), nerr, msf(pct(lat, 50)), msf(pct(lat, 99)), msf(pct(lat, 100)))
	return nil
}

func pct(s []time.Duration, p int) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func ms2(d time.Duration) string  { return fmt.Sprintf("%.1fms", msf(d)) }

// target is one of the URL families the boot load fetches, and what the
// rounds got from it.
type target struct {
	name   string // as printed
	key    string // its RESULT fields' prefix
	url    func(int) string
	lat    []time.Duration
	el     time.Duration
	nerr   int
	rounds []float64 // each round's rate
}

func (t *target) rate() float64 { return float64(len(t.lat)) / t.el.Seconds() }

// bootLoad fetches machines' iPXE scripts over conns connections, then
// (with -static) a static boot file of the same size the same way, then
// (with -nginx) that file from nginx, and prints the rates and their
// ratios. The duration is cut into rounds that take the targets in turn,
// so that a change in the machine's speed during the run (other load, CPU
// frequency) weighs on every target alike instead of on the one measured
// then.
func (o *options) bootLoad(ctx context.Context) error {
	// The URLs are made before the load, so that the client, which shares
	// the cores, spends no more per script request than per file request.
	urls := make([]string, o.machines)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/ipxe?mac=52-54-00-%02x-%02x-%02x&uuid=%s&arch=x86_64&platform=efi",
			o.boot, byte(i>>16), byte(i>>8), byte(i), deviceUUID(i))
	}
	script := func(i int) string { return urls[i] }
	body, err := get(ctx, http.DefaultClient, script(0))
	if err != nil {
		return err
	}
	targets := []*target{{name: "boot script", key: "script", url: script}}
	if o.static != "" {
		if err := os.WriteFile(o.static, body, 0o644); err != nil {
			return err
		}
		targets = append(targets, &target{name: "static file", key: "static", url: func(int) string { return o.boot + "/images/x86_64/vmlinuz" }})
		if o.nginx != "" {
			nginxURL := o.nginx + "/" + filepath.Base(o.static)
			if b, err := get(ctx, http.DefaultClient, nginxURL); err != nil {
				return fmt.Errorf("nginx: %w", err)
			} else if !bytes.Equal(b, body) {
				return fmt.Errorf("nginx: %s is not the script's bytes", nginxURL)
			}
			targets = append(targets, &target{name: "nginx file", key: "nginx", url: func(int) string { return nginxURL }})
		}
	}
	rounds := max(o.rounds, 1)
	for range rounds {
		for _, t := range targets {
			lat, el, nerr := o.hammer(ctx, t.url, o.duration/time.Duration(rounds))
			t.lat, t.el, t.nerr = append(t.lat, lat...), t.el+el, t.nerr+nerr
			t.rounds = append(t.rounds, float64(len(lat))/el.Seconds())
		}
	}
	nerr := 0
	for _, t := range targets {
		slices.Sort(t.lat)
		nerr += t.nerr
		fmt.Printf("%-12s %d bytes  %d connections  %.0f req/s  p50 %s  p99 %s  errors %d\n",
			t.name+":", len(body), o.conns, t.rate(), ms2(pct(t.lat, 50)), ms2(pct(t.lat, 99)), t.nerr)
	}
	result := fmt.Sprintf("RESULT script_rps=%.0f", targets[0].rate())
	for _, t := range targets[1:] {
		// The ratio of the totals, and its range over the rounds. The
		// static file's ratio keeps the plain name bench/events.sh reads.
		ratio := t.key + "_ratio"
		if t.key == "static" {
			ratio = "ratio"
		}
		result += fmt.Sprintf(" %s_rps=%.0f %s=%.2f", t.key, t.rate(), ratio, targets[0].rate()/t.rate())
		lo, hi := math.Inf(1), 0.0
		for i, r := range t.rounds {
			lo, hi = min(lo, targets[0].rounds[i]/r), max(hi, targets[0].rounds[i]/r)
		}
		fmt.Printf("script / %s: %.2f (rounds %.2f to %.2f)\n", t.name, targets[0].rate()/t.rate(), lo, hi)
	}
	fmt.Println(result + fmt.Sprintf(" errors=%d", nerr))
	return nil
}

func get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b, err
}

// hammer gets url(i) as fast as conns keep-alive connections allow (one
// per source address) for d, and returns every request's latency.
func (o *options) hammer(ctx context.Context, url func(int) string, d time.Duration) (lat []time.Duration, el time.Duration, nerr int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for c := 0; c < o.conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := client(c, nil)
			var mine []time.Duration
			bad := 0
			for n := c; time.Now().Before(end); n += o.conns {
				t := time.Now()
				if _, err := get(ctx, cl, url(n%o.machines)); err != nil {
					bad++
				}
				mine = append(mine, time.Since(t))
			}
			cl.CloseIdleConnections()
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			nerr += bad
		}()
	}
	wg.Wait()
	return lat, time.Since(start), nerr
}
