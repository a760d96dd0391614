//go:build linux

package cli_test

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
)

// contentSite is a server data directory whose database references blobs
// in DIR/content: a File version, a Folder version of two files (one the
// same bytes as the File), a version still awaiting its bytes, and a blob
// nothing references.
type contentSite struct {
	dir    string
	blobs  map[string][]byte // the referenced blobs by hash
	orphan string
}

// seedContent builds a contentSite; big is the size of the File version's
// blob (several multipart parts when it goes to S3).
func seedContent(t *testing.T, big int) *contentSite {
	t.Helper()
	ctx := t.Context()
	site := &contentSite{dir: t.TempDir(), blobs: map[string][]byte{}}
	cs, err := content.Open(filepath.Join(site.dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	put := func(data []byte) content.Blob {
		t.Helper()
		b, err := cs.Put(ctx, bytes.NewReader(data), content.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	image := make([]byte, big)
	rand.Read(image)
	script := []byte("Write-Host imprint\n")
	file, small := put(image), put(script)
	site.blobs[file.SHA256], site.blobs[small.SHA256] = image, script
	site.orphan = put([]byte("left by a failed upload")).SHA256

	db, err := sqlite.Open(ctx, filepath.Join(site.dir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fileItem := &deploy.ContentItem{Name: "Image", Type: deploy.ContentFile, Purpose: deploy.PurposeOther}
	folder := &deploy.ContentItem{Name: "Scripts", Type: deploy.ContentFolder, Purpose: deploy.PurposeOther}
	for _, it := range []*deploy.ContentItem{fileItem, folder} {
		if err := db.CreateContentItem(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	add := func(item string, v deploy.ContentVersion) {
		t.Helper()
		v.Status = deploy.StatusActive
		if _, err := db.AddContentVersion(ctx, item, &v); err != nil {
			t.Fatal(err)
		}
	}
	add(fileItem.ID, deploy.ContentVersion{VersionNo: 1, SHA256: file.SHA256, ContentSize: file.Size})
	add(fileItem.ID, deploy.ContentVersion{VersionNo: 2, SHA256: strings.Repeat("ab", 32), AwaitingContent: true})
	m := &deploy.Manifest{Files: []deploy.ManifestFile{
		{Path: "image.wim", Size: file.Size, Mode: 0o644, SHA256: file.SHA256},
		{Path: "run.ps1", Size: small.Size, Mode: 0o644, SHA256: small.SHA256},
	}}
	add(folder.ID, deploy.ContentVersion{VersionNo: 1, SHA256: content.ManifestHash(m), Manifest: m, ContentSize: file.Size + small.Size})
	return site
}

// blobPath finds blob h's file in a local content store.
func blobPath(t *testing.T, store, h string) string {
	t.Helper()
	var found string
	filepath.WalkDir(store, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == h && strings.Contains(p, "sha256") {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("blob %s is not in %s", h, store)
	}
	return found
}

// storedBlobs lists the hashes a content store holds, each verified.
func storedBlobs(t *testing.T, b content.Blobs) []string {
	t.Helper()
	var hs []string
	err := b.Walk(t.Context(), func(bi content.BlobInfo) error {
		if err := b.Verify(t.Context(), bi.SHA256); err != nil {
			t.Errorf("blob %s in the target: %v", bi.SHA256, err)
		}
		hs = append(hs, bi.SHA256)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(hs)
	return hs
}

func (s *contentSite) hashes() []string {
	var hs []string
	for h := range s.blobs {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs
}

// TestMigrateContentLocal moves the content of a data directory into
// another local content store through the same copy as to S3: exactly the
// referenced blobs arrive, each hashed; a second run copies nothing; a
// blob lost from the target is copied again; and a blob missing or corrupt
// in the source fails the command naming it, after the others are copied.
func TestMigrateContentLocal(t *testing.T) {
	site := seedContent(t, 3<<20)
	target := filepath.Join(t.TempDir(), "content")

	code, out := migrate(t, "--from", "sqlite:"+site.dir, "--content-to", target)
	if code != 0 {
		t.Fatalf("migrate content: exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "Content: 2 blobs") || !strings.Contains(out, "2 copied") || !strings.Contains(out, "all 2 present") {
		t.Errorf("migrate output does not report 2 blobs copied and checked:\n%s", out)
	}
	dst, err := content.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if got, want := storedBlobs(t, dst), site.hashes(); !slices.Equal(got, want) {
		t.Fatalf("target holds %q, want the referenced %q (not the orphan %s)", got, want, site.orphan)
	}

	code, out = migrate(t, "--from", "sqlite:"+site.dir, "--content-to", target)
	if code != 0 || !strings.Contains(out, "0 copied") || !strings.Contains(out, "2 already there") {
		t.Errorf("second migrate: exit %d, want 0 copying nothing:\n%s", code, out)
	}

	// A run cut short leaves some blobs out: the next one brings them.
	small := site.hashes()[0]
	if len(site.blobs[small]) > len(site.blobs[site.hashes()[1]]) {
		small = site.hashes()[1]
	}
	if err := dst.Remove(t.Context(), small); err != nil {
		t.Fatal(err)
	}
	code, out = migrate(t, "--from", "sqlite:"+site.dir, "--content-to", target)
	if code != 0 || !strings.Contains(out, "1 copied") || !strings.Contains(out, "1 already there") {
		t.Errorf("resumed migrate: exit %d, want 0 copying the one missing blob:\n%s", code, out)
	}
	if got, want := storedBlobs(t, dst), site.hashes(); !slices.Equal(got, want) {
		t.Errorf("after resuming the target holds %q, want %q", got, want)
	}

	// A blob in the target of another size than recorded (damaged there)
	// is checked, set aside and copied again.
	tp := blobPath(t, target, small)
	os.Chmod(tp, 0o600)
	if err := os.WriteFile(tp, site.blobs[small][:3], 0o400); err != nil {
		t.Fatal(err)
	}
	code, out = migrate(t, "--from", "sqlite:"+site.dir, "--content-to", target)
	if code != 0 || !strings.Contains(out, "1 copied") {
		t.Errorf("migrate over a damaged target blob: exit %d, want 0 copying it again:\n%s", code, out)
	}
	if err := dst.Verify(t.Context(), small); err != nil {
		t.Errorf("the damaged target blob was not replaced: %v", err)
	}

	// A corrupt source blob is refused by the target's hash check and
	// named; the other blob is copied.
	fresh := filepath.Join(t.TempDir(), "content")
	p := blobPath(t, filepath.Join(site.dir, "content"), small)
	os.Chmod(p, 0o600)
	bad := bytes.Clone(site.blobs[small])
	bad[0] ^= 1
	if err := os.WriteFile(p, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = migrate(t, "--from", "sqlite:"+site.dir, "--content-to", fresh)
	if code != 1 || !strings.Contains(out, small) || !strings.Contains(out, "corrupt in the source") {
		t.Errorf("migrate from a corrupt source: exit %d, want 1 naming %s corrupt:\n%s", code, small, out)
	}
	// … and a missing one likewise.
	os.Remove(p)
	code, out = migrate(t, "--from", "sqlite:"+site.dir, "--content-to", fresh)
	if code != 1 || !strings.Contains(out, small) || !strings.Contains(out, "missing in the source") {
		t.Errorf("migrate from a source missing a blob: exit %d, want 1 naming %s missing:\n%s", code, small, out)
	}
	f, err := content.Open(fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := storedBlobs(t, f); len(got) != 1 || got[0] == small {
		t.Errorf("a source problem with one blob: the target holds %q, want only the other blob", got)
	}
}

// TestMigrateContentAndDatabase moves the database and the content in one
// command: content first, then every table.
func TestMigrateContentAndDatabase(t *testing.T) {
	site := seedContent(t, 1<<20)
	newDir := t.TempDir()
	target := filepath.Join(newDir, "content")
	code, out := migrate(t, "--from", "sqlite:"+site.dir, "--to", "sqlite:"+newDir, "--content-to", target)
	if code != 0 || !strings.Contains(out, "every table matches") || !strings.Contains(out, "2 copied") {
		t.Fatalf("migrate database and content: exit %d:\n%s", code, out)
	}
	dst, err := content.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if got, want := storedBlobs(t, dst), site.hashes(); !slices.Equal(got, want) {
		t.Errorf("target holds %q, want %q", got, want)
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(newDir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	items, err := db.ContentItems(t.Context())
	if err != nil || len(items) != 2 {
		t.Errorf("the new database has %d content items (%v), want 2", len(items), err)
	}
}

// TestMigrateContentBadInput: content flags that cannot work are refused
// before anything is copied.
func TestMigrateContentBadInput(t *testing.T) {
	site := seedContent(t, 1024)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	for _, tt := range []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"--from", "sqlite:" + site.dir}, 2, "with --to, --content-to or both"},
		{[]string{"--from", "sqlite:" + site.dir, "--to", "sqlite:" + t.TempDir(), "--content-from", site.dir}, 2, "--content-from without --content-to"},
		{[]string{"--from", "sqlite:" + site.dir, "--content-to", filepath.Join(site.dir, "content")}, 2, "same content store"},
		{[]string{"--from", "sqlite:" + site.dir, "--content-from", filepath.Join(site.dir, "nothing"), "--content-to", t.TempDir()}, 1, "no content store at"},
		{[]string{"--from", "sqlite:" + site.dir, "--content-to", "s3://imprint?endpoint=http://127.0.0.1:1"}, 1, "AWS_ACCESS_KEY_ID"},
		{[]string{"--from", "sqlite:" + site.dir, "--content-to", "s3://x?endpoint=http://127.0.0.1:1"}, 1, "bucket name"},
	} {
		code, out := migrate(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.contains) {
			t.Errorf("migrate %q: exit %d, want %d with %q:\n%s", tt.args, code, tt.code, tt.contains, out)
		}
	}
}
