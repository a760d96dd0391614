package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/wire"
)

// port is one listener of a test server, dialled raw.
type port struct {
	name string
	dial func(src string) (net.Conn, error) // src: a 127.0.0.x address, ignored for the socket
}

func (ts *testServer) ports(t *testing.T) []port {
	t.Helper()
	pem, err := os.ReadFile(server.CACertPath(ts.dir))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	from := func(src string) *net.Dialer {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	}
	return []port{
		{"api", func(src string) (net.Conn, error) {
			return tls.DialWithDialer(from(src), "tcp", ts.APIAddr().String(), tlsCfg)
		}},
		{"boot", func(src string) (net.Conn, error) { return from(src).Dial("tcp", ts.BootAddr().String()) }},
		{"socket", func(string) (net.Conn, error) { return net.DialTimeout("unix", ts.Socket(), 5*time.Second) }},
	}
}

func (p port) mustDial(t *testing.T, src string) net.Conn {
	t.Helper()
	c, err := p.dial(src)
	if err != nil {
		t.Fatalf("%s: dial from %s: %v", p.name, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin waits up to wait for the server to close c and reports
// whether it did and when.
func closedWithin(c net.Conn, r *bufio.Reader, wait time.Duration) (bool, time.Duration) {
	start := time.Now()
	c.SetReadDeadline(start.Add(wait))
	if r == nil {
		r = bufio.NewReader(c)
	}
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, time.Since(start)
	}
	return true, time.Since(start)
}

// get sends one keep-alive GET on c and returns the status.
func get(t *testing.T, c net.Conn, path string, extra string) (int, *bufio.Reader) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", path, extra)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	return resp.StatusCode, br
}

func TestIdleKeepAliveIsClosedOnEveryListener(t *testing.T) {
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Limits.IdleTimeout = 300 * time.Millisecond })
	for _, p := range ts.ports(t) {
		t.Run(p.name, func(t *testing.T) {
			c := p.mustDial(t, "127.0.0.1")
			status, br := get(t, c, "/healthz", "")
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if closed, after := closedWithin(c, br, 5*time.Second); !closed {
				t.Fatalf("idle keep-alive connection still open after %v", after)
			} else {
				t.Logf("closed after %v idle", after.Round(time.Millisecond))
			}
		})
	}
}

func TestBootPortRefusesLargeHeaders(t *testing.T) {
	ts := startServer(t, t.TempDir())
	boot := ts.ports(t)[1]
	for _, tc := range []struct {
		size int
		want int
	}{
		{2 << 10, http.StatusOK},
		{32 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{900 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		c := boot.mustDial(t, "127.0.0.1")
		if got, _ := get(t, c, "/healthz", "X-Pad: "+strings.Repeat("a", tc.size)+"\r\n"); got != tc.want {
			t.Errorf("%d-byte header: status %d, want %d", tc.size, got, tc.want)
		}
	}
}

func TestSlowBodyIsCutOnEveryListener(t *testing.T) {
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.Limits.BodyGrace = 500 * time.Millisecond
	})
	paths := map[string]string{"api": "/v1/auth/token", "boot": "/healthz", "socket": "/admin/v1/tasksequences/import"}
	for _, p := range ts.ports(t) {
		t.Run(p.name, func(t *testing.T) {
			c := p.mustDial(t, "127.0.0.1")
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"method\":", paths[p.name])
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to a half-sent body: %v", err)
			}
			// A login whose body is too slow costs no Argon2 and is no
			// failed guess: it never named a credential.
			if p.name == "api" && resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("login with a slow body: status %d, want 408", resp.StatusCode)
			}
			closed, after := closedWithin(c, br, 10*time.Second)
			if !closed {
				t.Fatalf("a half-sent body still holds the connection after %v", after)
			}
			t.Logf("status %d, then closed", resp.StatusCode)
		})
	}
}

func TestPerAddressCap(t *testing.T) {
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Limits.MaxConnsPerAddr = 3 })
	for _, p := range ts.ports(t)[:2] {
		t.Run(p.name, func(t *testing.T) {
			for range 3 {
				c := p.mustDial(t, "127.0.0.5")
				if closed, _ := closedWithin(c, nil, 100*time.Millisecond); closed {
					t.Fatal("a connection under the cap was closed")
				}
			}
			if c, err := p.dial("127.0.0.5"); err == nil {
				defer c.Close()
				if closed, _ := closedWithin(c, nil, 2*time.Second); !closed {
					t.Fatal("the 4th connection from one address was not refused")
				}
			} else if p.name != "api" && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatal(err) // a TLS handshake refused fails in the handshake
			}
			if got, _ := get(t, p.mustDial(t, "127.0.0.6"), "/healthz", ""); got != http.StatusOK {
				t.Fatalf("another address: status %d", got)
			}
		})
	}
}

// TestVouchedMachineAndSocketServedWhenFull fills the API with requests
// whose bodies never finish (which cannot be closed to make room, unlike
// idle connections) and checks that a machine that had authenticated, and
// the admin socket, are still served while a stranger is turned away.
func TestVouchedMachineAndSocketServedWhenFull(t *testing.T) {
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.Limits.MaxConns, c.Limits.MaxConnsPerAddr = 8, 4 // an eighth (1) reserved
		c.Limits.BodyGrace = time.Minute
	})
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)

	machine := machineClient(t, ts, "127.0.0.2")
	tok := machineLogin(t, ts, machine, "Correct-Horse-Battery-42")
	if st := machineGet(t, ts, machine, tok); st != http.StatusOK {
		t.Fatalf("machine before the attack: %d", st)
	}
	machine.CloseIdleConnections() // it will need a new connection
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, _ := ts.ConnStats(); st.Held == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the machine's closed connection is still counted: %+v", st)
		}
	}

	api := ts.ports(t)[0]
	held := 0
	for i := range 20 {
		c, err := api.dial(fmt.Sprintf("127.0.0.%d", 10+i/4))
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /v1/auth/token HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{")
		if closed, _ := closedWithin(c, nil, 300*time.Millisecond); closed {
			break
		}
		held++
	}
	apiStats, _ := ts.ConnStats()
	if held != 7 || apiStats.Held != 7 {
		t.Fatalf("attacker holds %d, server %d connections; want 7 of 8 (one reserved)", held, apiStats.Held)
	}
	if _, err := api.dial("127.0.0.3"); err == nil {
		t.Fatal("a stranger got the reserved place")
	}
	if st := machineGet(t, ts, machineClient(t, ts, "127.0.0.2"), tok); st != http.StatusOK {
		t.Fatalf("authenticated machine during the attack: %d", st)
	}
	var info wire.ServerInfo
	if resp := ts.do(t, "GET", "/admin/v1/info", nil, &info); resp.StatusCode != http.StatusOK || info.CASHA256 == "" {
		t.Fatalf("admin socket during the attack: %d", resp.StatusCode)
	}
}

// machineClient is an HTTPS client of ts whose connections come from src.
func machineClient(t *testing.T, ts *testServer, src string) *http.Client {
	t.Helper()
	base := ts.api.Transport.(*http.Transport)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: base.TLSClientConfig,
		DialContext:     func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) },
	}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func machineLogin(t *testing.T, ts *testServer, c *http.Client, passcode string) string {
	t.Helper()
	body := fmt.Sprintf(`{"method":"passcode","passcode":%q,"device":{"uuid":"6a1f0d2e-6b4c-4a57-9d1e-2f4c8b0a9e11"}}`, passcode)
	resp, err := c.Post(ts.apiURL("/v1/auth/token"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok tokenAnswer
	if err := jsonDecode(resp.Body, &tok); err != nil || resp.StatusCode != http.StatusOK || tok.Token == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	return tok.Token
}

// machineGet lists the task sequences with the session token.
func machineGet(t *testing.T, ts *testServer, c *http.Client, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.apiURL("/v1/tasksequences"), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/tasksequences: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// TestDownloadCutOnlyWhenItStalls downloads a content version over the
// admin socket: slowly but steadily for several times the stall (it must
// finish), and not reading at all (the server must give up).
func TestDownloadCutOnlyWhenItStalls(t *testing.T) {
	const stall = 500 * time.Millisecond
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Limits.Stall = stall })
	item := createItem(t, ts, deploy.ContentFile, deploy.PurposeOperatingSystem)
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if v, resp := upload(t, ts, item.ID, bytes.NewReader(data), ""); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d", resp.StatusCode)
	} else if v.VersionNo != 1 {
		t.Fatalf("version %d", v.VersionNo)
	}
	socket := ts.ports(t)[2]
	request := func() net.Conn {
		c := socket.mustDial(t, "")
		fmt.Fprintf(c, "GET /admin/v1/content/%s/versions/1/data HTTP/1.1\r\nHost: imprint\r\n\r\n", item.ID)
		return c
	}
	body := func(c net.Conn, pause time.Duration) (int, error) {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var n int
		buf := make([]byte, 16<<10)
		for {
			k, err := resp.Body.Read(buf)
			n += k
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				return n, err
			}
			time.Sleep(pause)
		}
	}

	// At most 1.6 MB/s: 2.5 s and more, five times the stall.
	start := time.Now()
	if n, err := body(request(), 10*time.Millisecond); n != len(data) || err != nil {
		t.Fatalf("slow download: %d of %d bytes, %v", n, len(data), err)
	}
	t.Logf("slow download of 4 MiB took %v (stall %v)", time.Since(start).Round(time.Millisecond), stall)

	// A client that reads nothing for 3 s: the server gave up meanwhile.
	c := request()
	time.Sleep(3 * time.Second)
	if n, _ := body(c, 0); n >= len(data) {
		t.Fatalf("stalled download: got all %d bytes after a 3 s pause; the server waited for it", n)
	} else {
		t.Logf("stalled download: the server stopped after %d of %d bytes", n, len(data))
	}
}
