package netlimit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// bodyServer answers with how much of the body it read and the read error.
func bodyServer(t *testing.T, lim BodyLimits, after func(r *http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		r.Body.Read(make([]byte, 1)) // as a JSON decoder may, after the end
		if after != nil {
			after(r)
		}
		fmt.Fprintf(w, "%d %v", n, err)
	})))
	t.Cleanup(srv.Close)
	return srv
}

// post sends headers for a body of size bytes, then calls feed to send it.
func post(t *testing.T, srv *httptest.Server, size int, feed func(c net.Conn)) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	go feed(c)
	return c
}

// answer reads the response; then, if close, waits for the server to close.
func answer(t *testing.T, c net.Conn, wait time.Duration, close bool) (body string, closed bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", false
	}
	b, _ := io.ReadAll(resp.Body)
	if !close {
		return string(b), false
	}
	_, err = br.ReadByte()
	var ne net.Error
	return string(b), err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestSlowBodiesAreCut(t *testing.T) {
	lim := BodyLimits{Grace: 500 * time.Millisecond, MinRate: 1024, Stall: 2 * time.Second}
	srv := bodyServer(t, lim, nil)
	for _, tc := range []struct {
		name string
		feed func(c net.Conn)
	}{
		{"half sent then silence", func(c net.Conn) { io.WriteString(c, strings.Repeat("x", 100)) }},
		{"a byte every 50 ms", func(c net.Conn) {
			for range 1000 {
				if _, err := c.Write([]byte{'x'}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c := post(t, srv, 1000, tc.feed)
			body, closed := answer(t, c, 5*time.Second, true)
			took := time.Since(start)
			if !strings.Contains(body, ErrSlowBody.Error()) || !closed {
				t.Fatalf("after %v: answer %q, closed %v; want the read cut and the connection closed", took, body, closed)
			}
			t.Logf("cut after %v: %s", took.Round(time.Millisecond), body)
		})
	}
}

func TestSteadyBodyOutlivesTheGrace(t *testing.T) {
	// 40 KiB at about 20 KiB/s: four times the grace, twenty times the
	// minimum rate.
	lim := BodyLimits{Grace: 500 * time.Millisecond, MinRate: 1024, Stall: time.Second}
	srv := bodyServer(t, lim, nil)
	const size = 40 << 10
	c := post(t, srv, size, func(c net.Conn) {
		for range size / 1024 {
			c.Write(make([]byte, 1024))
			time.Sleep(50 * time.Millisecond)
		}
	})
	if body, _ := answer(t, c, 10*time.Second, false); body != fmt.Sprintf("%d <nil>", size) {
		t.Fatalf("answer %q, want the whole body read", body)
	}
}

func TestUnreadBodyCannotHoldTheConnection(t *testing.T) {
	lim := BodyLimits{Grace: 500 * time.Millisecond, MinRate: 1024, Stall: time.Second}
	srv := httptest.NewServer(lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized) // refused before reading
	})))
	t.Cleanup(srv.Close)
	c := post(t, srv, 100_000, func(c net.Conn) { io.WriteString(c, "x") })
	if _, closed := answer(t, c, 5*time.Second, true); !closed {
		t.Fatal("connection with an unread, stalled body still open")
	}
}

func TestHandlerMayRunLongAfterTheBody(t *testing.T) {
	// Once the body is in, the server's background read must not be cut:
	// it would cancel the request's context.
	lim := BodyLimits{Grace: 200 * time.Millisecond, MinRate: 1024, Stall: 200 * time.Millisecond}
	var ctxErr error
	srv := bodyServer(t, lim, func(r *http.Request) {
		time.Sleep(800 * time.Millisecond)
		ctxErr = r.Context().Err()
	})
	c := post(t, srv, 10, func(c net.Conn) { io.WriteString(c, "0123456789") })
	if body, _ := answer(t, c, 5*time.Second, false); body != "10 <nil>" || ctxErr != nil {
		t.Fatalf("answer %q, context %v", body, ctxErr)
	}
}
