package multicast

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Fallback opens the same content by unicast from byte off (an HTTP Range
// request).
type Fallback func(ctx context.Context, off int64) (io.ReadCloser, error)

// Reader delivers one content version of a known size: from the multicast
// stream while it lasts, then — if the stream fails or ends short — the
// rest from Fallback, starting at the first byte not yet delivered. The
// caller hashes what it reads (disk.ApplyRaw checks the SHA-256), so a
// mixed stream is still verified end to end.
type Reader struct {
	ctx      context.Context
	primary  io.ReadCloser
	fallback Fallback
	size     int64
	cur      io.ReadCloser
	unicast  bool

	// Multicast and Unicast count the bytes delivered from each source.
	Multicast, Unicast int64
	// Lost is why the multicast stream was left, if it was.
	Lost error
}

// NewReader reads size bytes from primary, then from fallback.
func NewReader(ctx context.Context, primary io.ReadCloser, fallback Fallback, size int64) *Reader {
	return &Reader{ctx: ctx, primary: primary, fallback: fallback, size: size, cur: primary}
}

func (r *Reader) off() int64 { return r.Multicast + r.Unicast }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for {
		if r.off() >= r.size {
			if r.off() > r.size {
				return 0, deploy.Errorf(deploy.KindInternal, "multicast stream is longer than the content (%d bytes, want %d)", r.off(), r.size)
			}
			return 0, io.EOF
		}
		if rest := r.size - r.off(); int64(len(p)) > rest {
			p = p[:rest]
		}
		n, err := r.cur.Read(p)
		if r.unicast {
			r.Unicast += int64(n)
		} else {
			r.Multicast += int64(n)
		}
		if err == nil || (err == io.EOF && r.off() >= r.size) {
			if n > 0 || err == nil {
				return n, nil
			}
			return 0, io.EOF
		}
		if r.unicast {
			if err == io.EOF {
				err = deploy.Errorf(deploy.KindUnavailable, "content ended after %d of %d bytes", r.off(), r.size)
			}
			return n, err
		}
		// The multicast stream failed or ended short: continue by unicast
		// from the first byte not delivered.
		if err == io.EOF {
			err = fmt.Errorf("multicast stream ended after %d of %d bytes", r.off(), r.size)
		}
		r.Lost = err
		r.primary.Close()
		if r.ctx.Err() != nil {
			return n, r.ctx.Err()
		}
		rc, ferr := r.fallback(r.ctx, r.off())
		if ferr != nil {
			return n, errors.Join(fmt.Errorf("multicast lost (%w)", err), fmt.Errorf("unicast fallback from byte %d: %w", r.off(), ferr))
		}
		r.cur, r.unicast = rc, true
		if n > 0 {
			return n, nil
		}
	}
}

// Close closes whichever stream is open.
func (r *Reader) Close() error {
	if r.unicast {
		return r.cur.Close()
	}
	return r.primary.Close()
}
