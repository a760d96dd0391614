//go:build linux && s3

package integration_test

import (
	"testing"

	"github.com/imprint-osd/imprint/internal/content/s3store/s3test"
)

// replicaContent gives the replicas one SeaweedFS bucket (--content
// s3://…), as production replicas share one.
func replicaContent(t *testing.T, _, _ string) (args, env []string) {
	t.Helper()
	w := s3test.New()
	t.Cleanup(w.Close)
	w.Start(t)
	return []string{"--content", w.URL(w.Bucket(t))},
		[]string{"AWS_ACCESS_KEY_ID=" + w.Access, "AWS_SECRET_ACCESS_KEY=" + w.Secret}
}
