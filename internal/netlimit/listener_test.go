package netlimit

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// serveConns runs l's accept loop; accepted connections arrive on the
// returned channel.
func serveConns(t *testing.T, cfg Config) (*Listener, chan *Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, cfg)
	got := make(chan *Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			got <- c.(*Conn)
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l, got
}

// dialFrom connects to l from the loopback address src. A connection the
// server refuses at once may fail already here; it is then returned
// closed.
func dialFrom(t *testing.T, l net.Listener, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatal(err)
		}
		return refused{}
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refused is a connection reset while it was made.
type refused struct{ net.Conn }

// closedByPeer reports whether the server closed c within wait.
func closedByPeer(c net.Conn, wait time.Duration) bool {
	if _, ok := c.(refused); ok {
		return true
	}
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func accepted(t *testing.T, got chan *Conn) *Conn {
	t.Helper()
	select {
	case c := <-got:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("connection not accepted")
		return nil
	}
}

// hold opens n connections to l from src and marks each active, as a
// request in progress keeps it.
func hold(t *testing.T, l *Listener, got chan *Conn, src string, n int) {
	t.Helper()
	for range n {
		dialFrom(t, l, src)
		l.ConnState(accepted(t, got), http.StateActive)
	}
}

func TestPerAddressCapRefusesTheNextConnection(t *testing.T) {
	l, got := serveConns(t, Config{PerAddr: 3, MaxConns: 100})
	var first []*Conn
	for range 3 {
		dialFrom(t, l, "127.0.0.5")
		first = append(first, accepted(t, got))
	}
	over := dialFrom(t, l, "127.0.0.5")
	if !closedByPeer(over, 2*time.Second) {
		t.Fatal("4th connection from one address was not refused")
	}
	other := dialFrom(t, l, "127.0.0.6")
	accepted(t, got)
	if closedByPeer(other, 100*time.Millisecond) {
		t.Fatal("connection from another address was refused")
	}
	// A place freed is a place again.
	first[0].Close()
	dialFrom(t, l, "127.0.0.5")
	accepted(t, got)
	if st := l.Stats(); st.Refused != 1 || st.Held != 4 || st.Accepted != 5 {
		t.Fatalf("stats %+v, want 1 refused, 4 held, 5 accepted", st)
	}
}

func TestExemptAddressHasNoPerAddressCap(t *testing.T) {
	l, got := serveConns(t, Config{PerAddr: 1, MaxConns: 100, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/24")}})
	for range 3 {
		dialFrom(t, l, "127.0.0.7")
		accepted(t, got)
	}
}

func TestFullServerClosesTheLongestIdleConnection(t *testing.T) {
	l, got := serveConns(t, Config{MaxConns: 4, Reserve: 1, PerAddr: 10})
	var client []net.Conn
	var server []*Conn
	for range 3 {
		client = append(client, dialFrom(t, l, "127.0.0.5"))
		server = append(server, accepted(t, got))
		l.ConnState(server[len(server)-1], http.StateNew) // as http.Server does
	}
	// The first is busy with a request: it is not a candidate.
	l.ConnState(server[0], http.StateActive)
	newcomer := dialFrom(t, l, "127.0.0.6")
	accepted(t, got)
	if !closedByPeer(client[1], 2*time.Second) {
		t.Fatal("the longest idle connection was not closed to make room")
	}
	for _, c := range []net.Conn{client[0], client[2], newcomer} {
		if closedByPeer(c, 50*time.Millisecond) {
			t.Fatalf("%v closed; only the longest idle should be", c.LocalAddr())
		}
	}
	if st := l.Stats(); st.Evicted != 1 || st.Held != 3 {
		t.Fatalf("stats %+v, want 1 evicted, 3 held", st)
	}
}

func TestReserveIsForVouchedAddresses(t *testing.T) {
	vouched := NewAddrSet(16)
	vouched.Add(netip.MustParseAddr("127.0.0.9"), time.Now().Add(time.Hour))
	l, got := serveConns(t, Config{MaxConns: 4, Reserve: 2, PerAddr: 10, Vouched: vouched})
	hold(t, l, got, "127.0.0.5", 2)
	if c := dialFrom(t, l, "127.0.0.6"); !closedByPeer(c, 2*time.Second) {
		t.Fatal("a stranger got a reserved place")
	}
	hold(t, l, got, "127.0.0.9", 2)
	if c := dialFrom(t, l, "127.0.0.9"); !closedByPeer(c, 2*time.Second) {
		t.Fatal("MaxConns exceeded")
	}
}

func TestVouchedConnectionIsNeverEvicted(t *testing.T) {
	l, got := serveConns(t, Config{MaxConns: 2, PerAddr: 10, Vouched: NewAddrSet(16)})
	client := dialFrom(t, l, "127.0.0.5")
	c := accepted(t, got)
	Vouch(l.ConnContext(context.Background(), c), time.Hour)
	l.ConnState(c, http.StateIdle)
	dialFrom(t, l, "127.0.0.6")
	l.ConnState(accepted(t, got), http.StateActive)
	if s := dialFrom(t, l, "127.0.0.6"); !closedByPeer(s, 2*time.Second) {
		t.Fatal("server over MaxConns")
	}
	if closedByPeer(client, 50*time.Millisecond) {
		t.Fatal("the vouched connection was evicted")
	}
	if st := l.Stats(); st.Protected != 1 || st.Evicted != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSharedBudgetCapsListenersTogether(t *testing.T) {
	b := NewBudget(3, 0)
	api, apiGot := serveConns(t, Config{MaxConns: 10, PerAddr: 10, Budget: b})
	boot, bootGot := serveConns(t, Config{MaxConns: 10, PerAddr: 10, Budget: b})
	var apiClient []net.Conn
	var apiServer []*Conn
	for range 3 {
		apiClient = append(apiClient, dialFrom(t, api, "127.0.0.5"))
		c := accepted(t, apiGot)
		api.ConnState(c, http.StateActive)
		apiServer = append(apiServer, c)
	}
	// Every place of the budget is busy on the API port: the boot port,
	// far under its own cap, has none to give.
	if c := dialFrom(t, boot, "127.0.0.6"); !closedByPeer(c, 2*time.Second) {
		t.Fatal("the boot port took a connection beyond the shared budget")
	}
	if st := boot.Stats(); st.Refused != 1 || st.Held != 0 {
		t.Fatalf("boot stats %+v, want 1 refused, 0 held", st)
	}

	// An idle connection of the other port gives way.
	api.ConnState(apiServer[1], http.StateIdle)
	bootClient := dialFrom(t, boot, "127.0.0.6")
	bc := accepted(t, bootGot)
	if !closedByPeer(apiClient[1], 2*time.Second) {
		t.Fatal("the API port's idle connection was not closed to make room on the boot port")
	}

	// The port's own idle connection gives way before the other's.
	boot.ConnState(bc, http.StateIdle)
	api.ConnState(apiServer[2], http.StateIdle)
	dialFrom(t, boot, "127.0.0.7")
	accepted(t, bootGot)
	if !closedByPeer(bootClient, 2*time.Second) {
		t.Fatal("the boot port's own idle connection was not the one closed")
	}
	if closedByPeer(apiClient[2], 50*time.Millisecond) {
		t.Fatal("the API port's idle connection was closed though the boot port had its own")
	}
	if st := b.Stats(); st.Held != 3 || st.Peak != 3 || st.Max != 3 {
		t.Fatalf("budget stats %+v, want 3 held, peak 3", st)
	}
	if a, o := api.Stats(), boot.Stats(); a.Evicted != 1 || a.Held != 2 || o.Evicted != 1 || o.Held != 1 {
		t.Fatalf("stats API %+v, boot %+v; want 1 evicted on each, 2 held on API, 1 on boot", a, o)
	}
}

func TestSharedBudgetReserveIsForVouchedAddresses(t *testing.T) {
	vouched := NewAddrSet(16)
	vouched.Add(netip.MustParseAddr("127.0.0.9"), time.Now().Add(time.Hour))
	b := NewBudget(4, 2)
	api, apiGot := serveConns(t, Config{MaxConns: 10, PerAddr: 10, Vouched: vouched, Budget: b})
	boot, bootGot := serveConns(t, Config{MaxConns: 10, PerAddr: 10, Vouched: vouched, Budget: b})
	hold(t, api, apiGot, "127.0.0.5", 2)
	if c := dialFrom(t, boot, "127.0.0.6"); !closedByPeer(c, 2*time.Second) {
		t.Fatal("a stranger got a reserved place of the budget")
	}
	hold(t, boot, bootGot, "127.0.0.9", 2)
	if c := dialFrom(t, api, "127.0.0.9"); !closedByPeer(c, 2*time.Second) {
		t.Fatal("the budget was exceeded")
	}
	if st := b.Stats(); st.Held != 4 {
		t.Fatalf("budget stats %+v, want 4 held", st)
	}
}

func TestListenerCapStillHoldsUnderABudget(t *testing.T) {
	l, got := serveConns(t, Config{MaxConns: 2, PerAddr: 10, Budget: NewBudget(100, 0)})
	hold(t, l, got, "127.0.0.5", 2)
	if c := dialFrom(t, l, "127.0.0.5"); !closedByPeer(c, 2*time.Second) {
		t.Fatal("the listener's MaxConns was exceeded under a larger budget")
	}
}

// pair is a connected client and server Conn with small socket buffers,
// so a client that stops reading blocks the server's writes quickly.
func pair(t *testing.T, stall time.Duration) (client net.Conn, server *Conn) {
	t.Helper()
	l, got := serveConns(t, Config{WriteStall: stall})
	client = dialFrom(t, l, "127.0.0.5")
	client.(*net.TCPConn).SetReadBuffer(32 << 10)
	server = accepted(t, got)
	server.Conn.(*net.TCPConn).SetWriteBuffer(32 << 10)
	t.Cleanup(func() { server.Close() })
	return client, server
}

// drain reads from c, 8 KiB at a time with a pause of 10 ms (at most
// 800 KiB/s), until it ends.
func drain(c net.Conn) int64 {
	var total int64
	buf := make([]byte, 8<<10)
	for {
		n, err := c.Read(buf)
		total += int64(n)
		if err != nil {
			return total
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStalledReaderIsCutSlowReaderIsNot(t *testing.T) {
	const stall = time.Second
	for _, viaFile := range []bool{false, true} {
		name := "write"
		if viaFile {
			name = "sendfile"
		}
		t.Run(name, func(t *testing.T) {
			send := func(s *Conn, size int) error {
				if !viaFile {
					_, err := s.Write(make([]byte, size))
					return err
				}
				p := filepath.Join(t.TempDir(), "blob")
				if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				_, err = s.ReadFrom(io.LimitReader(f, int64(size)))
				return err
			}

			// A client that reads nothing: cut after the stall.
			_, s := pair(t, stall)
			errc := make(chan error, 1)
			start := time.Now()
			go func() { errc <- send(s, 16<<20) }()
			select {
			case err := <-errc:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("write to a stalled client: %v, want a deadline error", err)
				}
				t.Logf("stalled client cut after %v", time.Since(start).Round(time.Millisecond))
			case <-time.After(10 * time.Second):
				t.Fatal("write to a stalled client was not cut")
			}

			// A slow but steady client, for several times the stall
			// (2 MiB at most 800 KiB/s, one write call): never cut.
			c, s := pair(t, stall)
			const size = 2 << 20
			start = time.Now()
			go func() { errc <- send(s, size); s.Close() }()
			if n := drain(c); n != size {
				t.Errorf("slow reader got %d bytes, want %d", n, size)
			}
			if err := <-errc; err != nil {
				t.Fatalf("write to a slow but steady client: %v", err)
			}
			if d := time.Since(start); d < 2*stall {
				t.Errorf("the slow transfer took %v, not longer than the stall: it shows nothing", d)
			}
		})
	}
}
