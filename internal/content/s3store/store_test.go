//go:build s3

package s3store_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/content/contenttest"
	"github.com/imprint-osd/imprint/internal/content/s3store"
	"github.com/imprint-osd/imprint/internal/content/s3store/s3test"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// weed is the SeaweedFS server the tests of this package share.
var weed = s3test.New()

func TestMain(m *testing.M) {
	code := m.Run()
	weed.Close()
	os.Exit(code)
}

func smallParts(t *testing.T) *s3store.Store {
	return weed.Store(t, s3store.Options{PartSize: s3store.MinPartSize})
}

// TestConformance runs the content.Blobs suite against a real S3 server
// (SeaweedFS), with 5 MiB parts so a 12 MiB blob is three of them.
func TestConformance(t *testing.T) {
	weed.Start(t)
	contenttest.Run(t, contenttest.Harness{
		New: func(t *testing.T) content.Blobs { return smallParts(t) },
		Corrupt: func(t *testing.T, b content.Blobs, h string, data []byte) {
			s := b.(*s3store.Store)
			_, err := weed.Client.PutObject(t.Context(), s.Bucket(), s.Key(h), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
		},
		Leftovers: func(t *testing.T, b content.Blobs) []string {
			s := b.(*s3store.Store)
			var out []string
			for _, k := range weed.Keys(t, s.Bucket()) {
				if !strings.HasPrefix(k, s.Prefix()+"sha256/") {
					out = append(out, k)
				}
			}
			for _, k := range weed.Uploads(t, s.Bucket()) {
				out = append(out, "incomplete upload "+k)
			}
			return out
		},
		Big: 12 << 20,
	})
}

// TestPutStreams puts 96 MiB through 16 MiB parts and checks the
// allocations: far below the blob's size, so no whole file was held.
func TestPutStreams(t *testing.T) {
	s := weed.Store(t, s3store.Options{})
	const size = 96 << 20
	src := io.LimitReader(&counter{}, size)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b, err := s.Put(t.Context(), src, content.PutOptions{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if b.Size != size {
		t.Fatalf("Put stored %d bytes, want %d", b.Size, size)
	}
	if peak := after.HeapSys - before.HeapSys; int64(after.TotalAlloc-before.TotalAlloc) > size/2 {
		t.Errorf("Put of %d MiB allocated %d MiB (heap grew %d MiB), want under half the blob",
			size>>20, (after.TotalAlloc-before.TotalAlloc)>>20, peak>>20)
	}
	if err := s.Verify(t.Context(), b.SHA256); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// counter yields a cheap non-repeating stream.
type counter struct{ n uint64 }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = byte(c.n ^ c.n>>8 ^ c.n>>16)
	}
	return len(p), nil
}

// TestOpenCleansStale: an upload its process died in (an incomplete
// multipart upload, a temporary object) is removed by Open once stale,
// and kept while it may be another server's upload in progress.
func TestOpenCleansStale(t *testing.T) {
	weed.Start(t)
	bucket := weed.Bucket(t)
	ctx := t.Context()
	core := minio.Core{Client: weed.Client}
	if _, err := core.NewMultipartUpload(ctx, bucket, "tmp/put-dead", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := weed.Client.PutObject(ctx, bucket, "tmp/put-dead2", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := s3store.Open(ctx, weed.Config(bucket), s3store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s.Cleaned != 0 || len(weed.Uploads(t, bucket)) != 1 || !slices.Contains(weed.Keys(t, bucket), "tmp/put-dead2") {
		t.Fatalf("Open removed fresh uploads (cleaned %d): another server's may be in progress", s.Cleaned)
	}
	time.Sleep(10 * time.Millisecond)
	s, err = s3store.Open(ctx, weed.Config(bucket), s3store.Options{StaleAfter: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s.Cleaned != 2 {
		t.Errorf("Cleaned = %d, want 2", s.Cleaned)
	}
	if u, k := weed.Uploads(t, bucket), weed.Keys(t, bucket); len(u) != 0 || len(k) != 0 {
		t.Errorf("after Open: uploads %q, objects %q; want none", u, k)
	}
}

func TestOpenRefuses(t *testing.T) {
	weed.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := weed.Config("no-such-bucket")
	if _, err := s3store.Open(ctx, cfg, s3store.Options{}); !deploy.IsNotFound(err) || !strings.Contains(err.Error(), "create it") {
		t.Errorf("Open of a missing bucket: %v, want not found, create it", err)
	}
	cfg = weed.Config(weed.Bucket(t))
	cfg.SecretKey = "wrong"
	if _, err := s3store.Open(ctx, cfg, s3store.Options{}); err == nil {
		t.Error("Open with a wrong secret key succeeded")
	}
	if _, err := s3store.Open(ctx, weed.Config(weed.Bucket(t)), s3store.Options{PartSize: 1 << 20}); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("Open with 1 MiB parts: %v, want KindInvalid", err)
	}
}
