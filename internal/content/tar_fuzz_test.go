package content_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// FuzzPutTar feeds any archive to a Folder upload (the agent's captures
// and technicians' uploads arrive this way). A refusal is KindInvalid or
// KindTooLarge, never a failure of the store; an accepted archive gives a
// valid manifest whose paths stay inside any target directory, whose
// blobs are stored with their sizes, and which WriteTar turns back into an
// archive that uploads to the same manifest.
// Seeds: testdata/fuzz/FuzzPutTar.
func FuzzPutTar(f *testing.F) {
	s, err := content.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	content.SetMaxEntries(s, 64)
	const maxSize = 1 << 20
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, archive []byte) {
		m, total, err := s.PutTar(ctx, bytes.NewReader(archive), content.PutOptions{MaxSize: maxSize})
		if err != nil {
			if k := deploy.ErrorKind(err); k != deploy.KindInvalid && k != deploy.KindTooLarge {
				t.Fatalf("PutTar error %v is %v, want KindInvalid or KindTooLarge", err, k)
			}
			return
		}
		if err := content.ValidateManifest(m); err != nil {
			t.Fatalf("accepted manifest is invalid: %v", err)
		}
		if !slices.IsSortedFunc(m.Files, func(a, b deploy.ManifestFile) int { return strings.Compare(a.Path, b.Path) }) {
			t.Fatalf("manifest not sorted by path: %+v", m.Files)
		}
		var sum int64
		for _, mf := range m.Files {
			if !filepath.IsLocal(mf.Path) || strings.Contains(mf.Path, `\`) {
				t.Fatalf("path %q escapes the target directory", mf.Path)
			}
			b, err := s.Stat(ctx, mf.SHA256)
			if err != nil || b.Size != mf.Size {
				t.Fatalf("blob of %q: %+v, %v; want %d bytes", mf.Path, b, err, mf.Size)
			}
			sum += mf.Size
		}
		if sum != total || total > maxSize {
			t.Fatalf("total %d, files add up to %d, limit %d", total, sum, maxSize)
		}
		var again bytes.Buffer
		if err := s.WriteTar(ctx, &again, m); err != nil {
			t.Fatalf("WriteTar: %v", err)
		}
		m2, total2, err := s.PutTar(ctx, &again, content.PutOptions{ExpectSHA256: content.ManifestHash(m)})
		if err != nil {
			t.Fatalf("the archive WriteTar made is refused: %v", err)
		}
		if diff := cmp.Diff(m, m2); diff != "" || total2 != total {
			t.Fatalf("manifest changed on the way back (-first +second):\n%s", diff)
		}
	})
}
