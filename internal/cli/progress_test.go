package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by step on every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(c.step)
	return c.t
}

func TestProgressSummaryWhenNotATerminal(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: time.Second}
	p := newProgress(&out, "uploaded", 3<<20, false, clk.now)
	r := p.reader(strings.NewReader(strings.Repeat("x", 3<<20)), 3<<20, true)
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if s, ok := r.(interface{ Size() int64 }); !ok || s.Size() != 3<<20 {
		t.Errorf("sized reader does not report its size")
	}
	// The clock read once at start and once at finish: 1s apart.
	p.finish(true)
	if got, want := out.String(), "uploaded 3.0 MiB in 1s (3.0 MiB/s)\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestProgressSilentOnFailureWhenNotATerminal(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: time.Second}
	p := newProgress(&out, "uploaded", 0, false, clk.now)
	p.add(10)
	p.finish(false)
	if out.Len() != 0 {
		t.Errorf("output = %q, want nothing", out.String())
	}
}

func TestProgressBarOnTerminal(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: 100 * time.Millisecond}
	p := newProgress(&out, "uploaded", 4096, true, clk.now) // start at 0.1s
	p.add(1024)                                             // 0.2s: 100ms since start, but lastDraw is zero → draws
	p.add(1024)                                             // 0.3s: only 100ms since the last draw → no redraw
	p.add(1024)                                             // 0.4s: 200ms → draws
	p.finish(true)
	lines := strings.Split(out.String(), "\r")
	want := []string{
		"",
		"1.0 KiB / 4.0 KiB  25% [=====               ]  10.0 KiB/s",
		"3.0 KiB / 4.0 KiB  75% [===============     ]  10.0 KiB/s",
		"3.0 KiB / 4.0 KiB  75% [===============     ]  7.5 KiB/s \n",
	}
	if len(lines) != len(want) {
		t.Fatalf("output = %q, want %d redraws", out.String(), len(want)-1)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("redraw %d = %q, want %q", i, lines[i], want[i])
		}
	}
}

func TestProgressUnknownTotal(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: time.Second}
	p := newProgress(&out, "uploaded", 0, true, clk.now)
	p.add(2048)
	p.finish(true)
	if got, want := out.String(), "\r2.0 KiB  2.0 KiB/s\r2.0 KiB  1.0 KiB/s\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
