//go:build linux && !s3

package integration_test

import (
	"os"
	"path/filepath"
	"testing"
)

// replicaContent gives the replicas one content store. Without an S3
// server (make test) replica B's DATA/content is a link to A's
// directory: the database, the sessions, the CA, the live events and the
// audit chain are shared exactly as in production, and B serves the
// blobs A stored. A shared local directory is a test shortcut, not a
// supported deployment (a starting server clears its content tmp/ and
// sweeps unreferenced blobs without the grace an S3 store gets, so B is
// started before anything is uploaded); `make test-s3` runs this test on
// a SeaweedFS bucket instead.
func replicaContent(t *testing.T, dataA, dataB string) (args, env []string) {
	t.Helper()
	dir := filepath.Join(dataA, "content")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dataB, "content")); err != nil {
		t.Fatal(err)
	}
	return nil, nil
}
