package netlimit

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// BodyLimits bound how long a client may take to send a request body,
// without bounding how long a large body may take while it keeps coming.
// The time spent waiting for the client (not the time the handler spends
// between reads) may not exceed Grace plus one second per MinRate bytes
// received, and no single wait may exceed Stall. So a login body trickled
// a byte at a time is cut after about Grace, a multi-gigabyte upload at
// any rate above MinRate runs to its end, and one that stops is cut after
// Stall.
type BodyLimits struct {
	Grace   time.Duration
	MinRate int64 // bytes per second
	Stall   time.Duration
}

// ErrSlowBody is returned by a body read cut by the limits.
var ErrSlowBody = errors.New("request body arrived too slowly")

// Handler applies the limits to every request body next reads. It sets
// read deadlines through http.ResponseController, so it must see the
// server's own ResponseWriter (wrap it outside other middleware). The
// deadline is set before next runs, so a body next never reads cannot hold
// the connection either when the server discards it.
func (b BodyLimits) Handler(next http.Handler) http.Handler {
	if b.Grace <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		br := &limitedBody{ReadCloser: r.Body, lim: b, rc: http.NewResponseController(w)}
		if err := br.rc.SetReadDeadline(time.Now().Add(b.Grace)); err != nil {
			next.ServeHTTP(w, r) // a ResponseWriter without deadlines (tests)
			return
		}
		r.Body = br
		next.ServeHTTP(w, r)
	})
}

type limitedBody struct {
	io.ReadCloser
	lim      BodyLimits
	rc       *http.ResponseController
	received int64
	waited   time.Duration
	done     bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	start := time.Now()
	allowed := b.lim.Grace - b.waited
	if b.lim.MinRate > 0 {
		// Capped at a day: far beyond any Stall, and no overflow.
		credit := min(float64(b.received)/float64(b.lim.MinRate), 86400)
		allowed += time.Duration(credit * float64(time.Second))
	}
	if b.lim.Stall > 0 {
		allowed = min(allowed, b.lim.Stall)
	}
	b.rc.SetReadDeadline(start.Add(max(allowed, 0)))
	n, err := b.ReadCloser.Read(p)
	b.waited += time.Since(start)
	b.received += int64(n)
	switch {
	case err == io.EOF:
		// From here the server reads on in the background (with no
		// deadline) to notice a client that goes away; a deadline set
		// by a later Read would cut that read and cancel the request.
		b.done = true
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w (%d bytes in %s): %w", ErrSlowBody, b.received, b.waited.Round(time.Millisecond), err)
	}
	return n, err
}
