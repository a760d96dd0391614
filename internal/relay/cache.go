package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Cache holds content blobs by SHA-256 under DIR/sha256/ab/<hash>. A miss
// is fetched from upstream once, whatever the number of machines asking
// at the same time: the first request starts the download into a
// temporary file, and every reader — the first one included — reads that
// file as it grows. The blob is renamed into place only after its hash
// checked; a bad or cut download leaves nothing behind.
type Cache struct {
	Dir string

	mu       sync.Mutex
	inflight map[string]*fill
}

// fill is a download in progress.
type fill struct {
	path string
	size int64

	mu      sync.Mutex
	cond    *sync.Cond
	written int64
	done    bool
	err     error
}

func (c *Cache) blobPath(sha string) string {
	return filepath.Join(c.Dir, "sha256", sha[:2], sha)
}

// Has reports whether the whole blob is cached.
func (c *Cache) Has(sha string) bool {
	_, err := os.Stat(c.blobPath(sha))
	return err == nil
}

// Open returns a reader of blob sha (size bytes) from offset off: from
// the cache, or — on a miss — from a download fetch starts (once for all
// concurrent callers). fetch must return the whole blob.
func (c *Cache) Open(ctx context.Context, sha string, size, off int64, fetch func(ctx context.Context) (io.ReadCloser, error)) (io.ReadCloser, error) {
	if len(sha) != 64 {
		return nil, fmt.Errorf("relay cache: bad hash %q", sha)
	}
	if f, err := os.Open(c.blobPath(sha)); err == nil {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	c.mu.Lock()
	fl := c.inflight[sha]
	if fl == nil {
		var err error
		if fl, err = c.start(sha, size, fetch); err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	c.mu.Unlock()
	f, err := os.Open(fl.path)
	if err != nil {
		// The fill finished and renamed its file between the lookups.
		if f, err2 := os.Open(c.blobPath(sha)); err2 == nil {
			f.Seek(off, io.SeekStart)
			return f, nil
		}
		return nil, err
	}
	return &tail{fl: fl, f: f, off: off, ctx: ctx, stop: context.AfterFunc(ctx, fl.wake)}, nil
}

// start begins the download of sha; c.mu is held.
func (c *Cache) start(sha string, size int64, fetch func(ctx context.Context) (io.ReadCloser, error)) (*fill, error) {
	tmpDir := filepath.Join(c.Dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("relay cache: %w", err)
	}
	tmp, err := os.CreateTemp(tmpDir, sha[:12]+"-*")
	if err != nil {
		return nil, fmt.Errorf("relay cache: %w", err)
	}
	fl := &fill{path: tmp.Name(), size: size}
	fl.cond = sync.NewCond(&fl.mu)
	if c.inflight == nil {
		c.inflight = make(map[string]*fill)
	}
	c.inflight[sha] = fl
	// The download belongs to the cache, not to the request that started
	// it: a machine that gives up does not waste what others wait for.
	go func() {
		err := c.download(sha, tmp, fl, fetch)
		c.mu.Lock()
		delete(c.inflight, sha)
		c.mu.Unlock()
		fl.mu.Lock()
		fl.done, fl.err = true, err
		fl.cond.Broadcast()
		fl.mu.Unlock()
	}()
	return fl, nil
}

func (c *Cache) download(sha string, tmp *os.File, fl *fill, fetch func(ctx context.Context) (io.ReadCloser, error)) (err error) {
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	body, err := fetch(context.Background())
	if err != nil {
		return err
	}
	defer body.Close()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := tmp.Write(buf[:n]); werr != nil {
				return fmt.Errorf("relay cache: %w", werr)
			}
			h.Write(buf[:n])
			fl.mu.Lock()
			fl.written += int64(n)
			fl.cond.Broadcast()
			fl.mu.Unlock()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("relay cache: fetch from upstream: %w", rerr)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("relay cache: upstream sent content with SHA-256 %s, want %s", got, sha)
	}
	if fl.size >= 0 && fl.written != fl.size {
		return fmt.Errorf("relay cache: upstream sent %d bytes, want %d", fl.written, fl.size)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("relay cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("relay cache: %w", err)
	}
	dst := c.blobPath(sha)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("relay cache: %w", err)
	}
	return os.Rename(tmp.Name(), dst)
}

// tail reads a fill's file as it grows.
type tail struct {
	fl   *fill
	f    *os.File
	off  int64
	ctx  context.Context
	stop func() bool
}

func (t *tail) Read(p []byte) (int, error) {
	fl := t.fl
	fl.mu.Lock()
	for t.off >= fl.written && !fl.done {
		if t.ctx.Err() != nil {
			fl.mu.Unlock()
			return 0, t.ctx.Err()
		}
		fl.cond.Wait()
	}
	avail, done, ferr := fl.written-t.off, fl.done, fl.err
	fl.mu.Unlock()
	if avail <= 0 {
		if ferr != nil {
			return 0, ferr
		}
		if done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, err := t.f.ReadAt(p, t.off)
	t.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	return n, nil
}

func (t *tail) Close() error { t.stop(); return t.f.Close() }

// wake unblocks the readers of a fill so that one whose request ended
// (its ctx) sees it.
func (fl *fill) wake() {
	fl.mu.Lock()
	fl.cond.Broadcast()
	fl.mu.Unlock()
}
