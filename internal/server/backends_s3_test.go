//go:build s3

package server_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/content/s3store"
	"github.com/imprint-osd/imprint/internal/content/s3store/s3test"
	"github.com/imprint-osd/imprint/internal/server"
)

// weed is the SeaweedFS S3 server the content tests of this package share
// (started on first use).
var weed = s3test.New()

func TestMain(m *testing.M) {
	code := m.Run()
	weed.Close()
	os.Exit(code)
}

// s3Backend runs fn on a server whose content is in a SeaweedFS bucket.
func s3Backend(t *testing.T, fn func(t *testing.T, ts *testServer, bl blobs)) {
	t.Run("s3", func(t *testing.T) {
		st := weed.Store(t, s3store.Options{})
		ts := startServerDeps(t, t.TempDir(), nil, server.Deps{Blobs: st})
		b := st.Bucket()
		fn(t, ts, blobs{
			shared: true,
			exists: func(t *testing.T, h string) bool {
				_, err := weed.Client.StatObject(t.Context(), b, st.Key(h), minio.StatObjectOptions{})
				return err == nil
			},
			flip: func(t *testing.T, h string, at int64) {
				o, err := weed.Client.GetObject(t.Context(), b, st.Key(h), minio.GetObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				data, err := io.ReadAll(o)
				o.Close()
				if err != nil {
					t.Fatal(err)
				}
				data[at] ^= 0x01
				if _, err := weed.Client.PutObject(t.Context(), b, st.Key(h), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			remove: func(t *testing.T, h string) {
				if err := weed.Client.RemoveObject(t.Context(), b, st.Key(h), minio.RemoveObjectOptions{}); err != nil {
					t.Fatal(err)
				}
			},
		})
	})
}

// TestStartSparesYoungBlobsInASharedStore: in a bucket other replicas may
// share, the start-up sweep leaves an unreferenced blob younger than an
// hour (another server's upload may be about to commit its row); the
// local directory's sweep removes it (TestStartSweepsUnreferencedBlobs).
func TestStartSparesYoungBlobsInASharedStore(t *testing.T) {
	st := weed.Store(t, s3store.Options{})
	b, err := st.Put(t.Context(), bytes.NewReader([]byte("in flight elsewhere")), content.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	startServerDeps(t, t.TempDir(), nil, server.Deps{Blobs: st})
	if _, err := st.Stat(t.Context(), b.SHA256); err != nil {
		t.Errorf("a young unreferenced blob in the shared bucket was swept: %v", err)
	}
}
