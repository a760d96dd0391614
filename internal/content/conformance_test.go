package content_test

import (
	"os"
	"testing"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/content/contenttest"
)

// TestConformance runs the content.Blobs suite on the local store; the
// S3 store runs the same suite (internal/content/s3store).
func TestConformance(t *testing.T) {
	contenttest.Run(t, contenttest.Harness{
		New: func(t *testing.T) content.Blobs { return newStore(t) },
		Corrupt: func(t *testing.T, b content.Blobs, h string, data []byte) {
			p := b.(*content.Store).Path(h)
			os.Chmod(p, 0o600)
			if err := os.WriteFile(p, data, 0o400); err != nil {
				t.Fatal(err)
			}
		},
		Leftovers: func(t *testing.T, b content.Blobs) []string {
			return files(t, b.(*content.Store).Dir(), "tmp")
		},
		Big: 3 << 20,
	})
}
