package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/content/s3store"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// migrateContent copies every blob a content version of src references
// from the content store --content-from names (DIR/content by default) to
// the one --content-to names (content.CopyBlobs: streamed, hashed by the
// target as it stores, resumable).
func (a *app) migrateContent(ctx context.Context, src *storeEnd, from, fromStore, toStore string) (content.CopyReport, error) {
	if fromStore == "" {
		if src.dir == "" {
			return content.CopyReport{}, usagef(fmt.Sprintf("imprint migrate: --from %s has no data directory: name the old content store with --content-from", safe(endName(from))), usageMigrate)
		}
		fromStore = filepath.Join(src.dir, "content")
	}
	if sameStore(fromStore, toStore) {
		return content.CopyReport{}, usagef("imprint migrate: --content-from and --content-to name the same content store", usageMigrate)
	}
	want, err := referencedBlobs(ctx, src)
	if err != nil {
		return content.CopyReport{}, fmt.Errorf("migrate: content: %w", err)
	}
	srcBlobs, err := a.openBlobs(ctx, fromStore, src.dir, true)
	if err != nil {
		return content.CopyReport{}, fmt.Errorf("migrate --content-from: %w", err)
	}
	defer srcBlobs.Close()
	dstBlobs, err := a.openBlobs(ctx, toStore, src.dir, false)
	if err != nil {
		return content.CopyReport{}, fmt.Errorf("migrate --content-to: %w", err)
	}
	defer dstBlobs.Close()
	last := time.Now()
	rep, err := content.CopyBlobs(ctx, dstBlobs, srcBlobs, want, func(r content.CopyReport) {
		if time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(a.stderr, "content: %d of %d blobs in the target (%s copied)\n",
			r.Copied+r.Present, r.Blobs, humanBytes(r.CopiedBytes))
	})
	if err != nil {
		return rep, fmt.Errorf("migrate: content to %s: %w", safe(s3store.Redact(toStore)), err)
	}
	return rep, nil
}

// referencedBlobs maps every blob a content version references to its
// size (-1 when two records of it disagree): a File version's blob, each
// file of a Folder version's manifest, as the store's content_blobs rows
// list them. Versions still awaiting their bytes reference none.
func referencedBlobs(ctx context.Context, src *storeEnd) (map[string]int64, error) {
	items, err := src.sql.ContentItems(ctx)
	if err != nil {
		return nil, fmt.Errorf("list content versions: %w", err)
	}
	want := map[string]int64{}
	add := func(h string, size int64) {
		if old, ok := want[h]; ok && old != size {
			size = -1 // the records disagree: the hash alone decides
		}
		want[h] = size
	}
	for _, it := range items {
		for _, v := range it.Versions {
			if v.AwaitingContent {
				continue
			}
			if it.Type == deploy.ContentFile && v.SHA256 != "" {
				add(v.SHA256, v.ContentSize)
			}
			if v.Manifest != nil {
				for _, f := range v.Manifest.Files {
					add(f.SHA256, f.Size)
				}
			}
		}
	}
	return want, nil
}

// openBlobs opens an s3:// URL or a local directory as a content store;
// credentials for S3 come from the environment or dataDir. A source
// directory must exist: an empty new one would only report every blob
// missing.
func (a *app) openBlobs(ctx context.Context, s, dataDir string, source bool) (content.Blobs, error) {
	if s3store.IsURL(s) {
		cfg, err := s3store.ParseURL(s)
		if err != nil {
			return nil, err
		}
		if a.getenv("AWS_ACCESS_KEY_ID") == "" && dataDir == "" {
			return nil, deploy.Errorf(deploy.KindInvalid, "s3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		if err := s3store.Credentials(&cfg, dataDir, a.getenv); err != nil {
			return nil, err
		}
		return s3store.Open(ctx, cfg, s3store.Options{})
	}
	if source {
		st, err := os.Stat(s)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no content store at %s", safe(s))
		}
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", safe(s))
		}
	}
	return content.Open(s)
}

// sameStore reports whether two content store names are one store: equal
// URLs, or directories that clean to one path.
func sameStore(a, b string) bool {
	if s3store.IsURL(a) || s3store.IsURL(b) {
		return a == b
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// printBlobs reports a content copy.
func printBlobs(a *app, r content.CopyReport, to string, took time.Duration) {
	fmt.Fprintf(a.stdout, "Content: %d blobs (%s) in %s: %d copied (%s), %d already there; all %d present with their sizes, each hashed on arrival",
		r.Blobs, humanBytes(r.Bytes), safe(s3store.Redact(to)), r.Copied, humanBytes(r.CopiedBytes), r.Present, r.Verified)
	if took > 0 {
		fmt.Fprintf(a.stdout, " (%s)", took.Round(time.Millisecond))
	}
	fmt.Fprintln(a.stdout, ".")
}
