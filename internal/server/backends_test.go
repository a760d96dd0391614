package server_test

import (
	"os"
	"testing"
)

// blobs reaches behind a server's content store, as bitrot or an operator
// would.
type blobs struct {
	exists func(t *testing.T, h string) bool
	flip   func(t *testing.T, h string, at int64) // corrupt one byte
	remove func(t *testing.T, h string)
	// shared: a store replicas may share (S3), where a deletion spares
	// a blob younger than an hour (another replica may be committing a
	// version of the same bytes) and a later sweep removes it.
	shared bool
}

// forBackends runs fn on a server with each content store: the local
// directory and, in `make test-s3` (build tag s3), an S3 bucket (SeaweedFS).
func forBackends(t *testing.T, fn func(t *testing.T, ts *testServer, bl blobs)) {
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		ts := startServer(t, dir)
		fn(t, ts, blobs{
			exists: func(t *testing.T, h string) bool { _, err := os.Stat(blobPath(dir, h)); return err == nil },
			flip:   func(t *testing.T, h string, at int64) { flipByte(t, blobPath(dir, h), at) },
			remove: func(t *testing.T, h string) { os.Remove(blobPath(dir, h)) },
		})
	})
	s3Backend(t, fn)
}
