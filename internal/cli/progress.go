package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress reports the bytes of an upload on w (stderr). On a terminal it
// redraws one line — bytes, percentage when the total is known, rate — at
// most every redrawEvery; elsewhere it stays quiet and writes one summary
// line when done, so logs of scripts stay readable.
type progress struct {
	w     io.Writer
	verb  string // "uploaded"
	total int64  // expected bytes, or <= 0 when unknown
	tty   bool
	now   func() time.Time

	mu       sync.Mutex // Read runs on the HTTP transport's goroutine
	n        int64
	start    time.Time
	lastDraw time.Time
	width    int // of the last line drawn, to blank it out
}

const redrawEvery = 200 * time.Millisecond

func newProgress(w io.Writer, verb string, total int64, tty bool, now func() time.Time) *progress {
	return &progress{w: w, verb: verb, total: total, tty: tty, now: now, start: now()}
}

// add counts n more bytes and redraws when due.
func (p *progress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(n)
	if !p.tty {
		return
	}
	t := p.now()
	if t.Sub(p.lastDraw) < redrawEvery {
		return
	}
	p.lastDraw = t
	p.draw(t)
}

// draw writes the progress line; p.mu is held.
func (p *progress) draw(t time.Time) {
	var b strings.Builder
	b.WriteString(humanBytes(p.n))
	if p.total > 0 {
		pct := p.n * 100 / p.total
		if pct > 100 {
			pct = 100
		}
		fmt.Fprintf(&b, " / %s %3d%% %s", humanBytes(p.total), pct, bar(pct, 20))
	}
	if r := rate(p.n, t.Sub(p.start)); r != "" {
		b.WriteString("  " + r)
	}
	line := b.String()
	pad := ""
	if n := p.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
}

// bar draws a bar of width cells for pct percent.
func bar(pct int64, width int) string {
	full := int(pct) * width / 100
	return "[" + strings.Repeat("=", full) + strings.Repeat(" ", width-full) + "]"
}

// rate formats bytes per second over d; "" for a zero duration.
func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return humanBytes(int64(float64(n)/d.Seconds())) + "/s"
}

// finish ends the report: the last state and a newline on a terminal, the
// summary line elsewhere. A failed transfer leaves only what was drawn (the
// error is reported by the caller).
func (p *progress) finish(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	if p.tty {
		if ok {
			p.draw(t)
		}
		if p.width > 0 {
			fmt.Fprintln(p.w)
		}
		return
	}
	if !ok {
		return
	}
	d := t.Sub(p.start)
	line := fmt.Sprintf("%s %s in %s", p.verb, humanBytes(p.n), d.Round(time.Millisecond))
	if r := rate(p.n, d); r != "" {
		line += " (" + r + ")"
	}
	fmt.Fprintln(p.w, line)
}

// reader returns r counted by p. It closes r when closed (so the HTTP
// transport can close a pipe), and reports size when sized is true so that
// the client sends a Content-Length.
func (p *progress) reader(r io.Reader, size int64, sized bool) io.ReadCloser {
	pr := &progressReader{r: r, p: p}
	if sized {
		return &sizedReader{progressReader: pr, size: size}
	}
	return pr
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.p.add(n)
	}
	return n, err
}

func (r *progressReader) Close() error {
	if c, ok := r.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

type sizedReader struct {
	*progressReader
	size int64
}

// Size implements client.Sizer.
func (r *sizedReader) Size() int64 { return r.size }
