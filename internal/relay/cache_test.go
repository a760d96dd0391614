package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func blob(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// slowReader hands out its bytes in small pieces, waiting for step between
// them, so readers catch up with the download.
type slowReader struct {
	r    io.Reader
	step chan struct{}
}

func (s *slowReader) Read(p []byte) (int, error) {
	<-s.step
	if len(p) > 4096 {
		p = p[:4096]
	}
	return s.r.Read(p)
}
func (s *slowReader) Close() error { return nil }

// TestCacheFetchesOnceForConcurrentReaders: eight readers at different
// offsets while the blob is still arriving; upstream is asked once, each
// reader gets its bytes, and the blob ends up in the cache.
func TestCacheFetchesOnceForConcurrentReaders(t *testing.T) {
	data, sha := blob(t, 1<<20)
	c := &Cache{Dir: t.TempDir()}
	var fetches atomic.Int32
	step := make(chan struct{})
	fetch := func(context.Context) (io.ReadCloser, error) {
		fetches.Add(1)
		return &slowReader{r: bytes.NewReader(data), step: step}, nil
	}
	go func() {
		for {
			select {
			case step <- struct{}{}:
			case <-t.Context().Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		off := int64(i) * 100_000
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := c.Open(t.Context(), sha, int64(len(data)), off, fetch)
			if err != nil {
				errs <- err
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, data[off:]) {
				errs <- errors.New("a reader got the wrong bytes")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("upstream was asked %d times, want once", n)
	}
	if !c.Has(sha) {
		t.Errorf("the blob is not in the cache after the download")
	}
	// Now a hit: no fetch at all.
	rc, err := c.Open(t.Context(), sha, int64(len(data)), 10, func(context.Context) (io.ReadCloser, error) {
		t.Fatal("fetched a cached blob")
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data[10:]) {
		t.Errorf("cached read from offset 10 is wrong")
	}
}

// TestCacheRefusesWhatDoesNotMatch: bytes whose hash is not the blob's, or
// a download cut short, fail the reader and leave nothing in the cache.
func TestCacheRefusesWhatDoesNotMatch(t *testing.T) {
	data, sha := blob(t, 64<<10)
	tests := map[string]func(context.Context) (io.ReadCloser, error){
		"other bytes": func(context.Context) (io.ReadCloser, error) {
			other, _ := blob(t, len(data))
			return io.NopCloser(bytes.NewReader(other)), nil
		},
		"cut short": func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(bytes.NewReader(data[:1000]), &failing{})), nil
		},
		"upstream refuses": func(context.Context) (io.ReadCloser, error) { return nil, errors.New("central server answered 404") },
	}
	for name, fetch := range tests {
		t.Run(name, func(t *testing.T) {
			c := &Cache{Dir: t.TempDir()}
			rc, err := c.Open(t.Context(), sha, int64(len(data)), 0, fetch)
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if err == nil {
				t.Fatal("read succeeded")
			}
			if c.Has(sha) {
				t.Error("the bad blob was kept")
			}
			left, _ := filepath.Glob(filepath.Join(c.Dir, "tmp", "*"))
			if len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

type failing struct{}

func (*failing) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestRangeStart(t *testing.T) {
	e := &infoEntry{sha256: "ab", size: 100}
	for _, tt := range []struct {
		rng, ifRange string
		off, end     int64
		ok           bool
	}{
		{"", "", 0, 100, true},
		{"bytes=40-", `"ab"`, 40, 100, true},
		{"bytes=40-", `"other"`, 0, 100, true}, // a changed version: the whole blob
		{"bytes=40-49", `"ab"`, 40, 50, true},  // a peer-sharing chunk
		{"bytes=90-199", "", 90, 100, true},    // cut at the end
		{"bytes=50-40", "", 0, 100, true},      // backwards: the whole blob
		{"bytes=100-", "", 0, 0, false},
	} {
		r, _ := newRequest(tt.rng, tt.ifRange)
		off, end, ok := rangeStart(r, e)
		if off != tt.off || end != tt.end || ok != tt.ok {
			t.Errorf("Range %q If-Range %q: %d-%d, %v; want %d-%d, %v", tt.rng, tt.ifRange, off, end, ok, tt.off, tt.end, tt.ok)
		}
	}
}

func newRequest(rng, ifRange string) (*http.Request, error) {
	r, err := http.NewRequest(http.MethodGet, "https://relay/v1/content/x/1/data", nil)
	if rng != "" {
		r.Header.Set("Range", rng)
	}
	if ifRange != "" {
		r.Header.Set("If-Range", ifRange)
	}
	return r, err
}
