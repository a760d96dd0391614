//go:build !s3

package server_test

import "testing"

// s3Backend is empty without the s3 build tag: the S3 runs need SeaweedFS,
// which `make test-s3` builds (too long for make test's budget).
func s3Backend(*testing.T, func(t *testing.T, ts *testServer, bl blobs)) {}
