package content

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

const (
	blobDir = "sha256"
	tmpDir  = "tmp"

	// bufSize is the copy buffer: large enough that a multi-GB image costs
	// few syscalls, small enough to pool one per concurrent upload.
	bufSize = 1 << 20

	blobMode = 0o400
	dirMode  = 0o700
)

// Blob identifies stored content.
type Blob struct {
	SHA256 string // 64 lowercase hex digits
	Size   int64
}

// PutOptions constrain an upload. Zero values mean no constraint.
type PutOptions struct {
	// ExpectSHA256, if set, is the hash the content must have; a mismatch
	// stores nothing and is KindInvalid. For PutTar it is the expected
	// ManifestHash of the resulting manifest.
	ExpectSHA256 string
	// MaxSize, if positive, is the largest accepted size in bytes; more is
	// KindTooLarge and stores nothing. For PutTar it bounds the total size
	// of all files.
	MaxSize int64
}

// Store is a content-addressed blob store rooted at one directory. It is
// safe for concurrent use, including by several processes sharing the
// directory.
type Store struct {
	dir  string
	root *os.Root
	bufs sync.Pool

	// Cleaned is how many leftover temp files Open removed.
	Cleaned int

	maxEntries int // MaxEntries; lowered by tests
}

// Open prepares the store at dir, creating dir/sha256 and dir/tmp if needed,
// and removes every leftover entry in dir/tmp (uploads killed mid-stream);
// Store.Cleaned says how many. Open is idempotent. Close the store when done.
//
// Only one process may Open a store while others use it: the cleanup would
// remove their uploads in progress.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, deploy.Errorf(deploy.KindInvalid, "content store directory is empty")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("open content store: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open content store: %w", err)
	}
	s := &Store{dir: dir, root: root, maxEntries: MaxEntries}
	s.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	if err := s.init(); err != nil {
		root.Close()
		return nil, fmt.Errorf("open content store %s: %w", dir, err)
	}
	return s, nil
}

func (s *Store) init() error {
	if err := s.root.Mkdir(blobDir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := s.root.Mkdir(tmpDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	d, err := s.root.Open(tmpDir)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("list temp files: %w", err)
	}
	for _, n := range names {
		if err := s.root.RemoveAll(path.Join(tmpDir, n)); err != nil {
			return fmt.Errorf("remove leftover temp file: %w", err)
		}
		s.Cleaned++
	}
	return nil
}

// Close releases the store's directory handle.
func (s *Store) Close() error { return s.root.Close() }

// Dir returns the store's root directory.
func (s *Store) Dir() string { return s.dir }

// ValidHash reports whether h is 64 lowercase hex digits, the only form of
// hash the store accepts.
func ValidHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkHash(h string) error {
	if !ValidHash(h) {
		return deploy.Errorf(deploy.KindInvalid, "hash %q is not 64 lowercase hex digits", truncate(h, 80))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// rel is the slash-separated path of a blob inside the root.
func rel(h string) string { return blobDir + "/" + h[:2] + "/" + h }

// Path returns the filesystem path of the blob h (which need not exist), or
// "" if h is not a valid hash.
func (s *Store) Path(h string) string {
	if !ValidHash(h) {
		return ""
	}
	return filepath.Join(s.dir, blobDir, h[:2], h)
}

// Stat returns the blob h; KindNotFound if it is not stored.
func (s *Store) Stat(ctx context.Context, h string) (Blob, error) {
	if err := checkHash(h); err != nil {
		return Blob{}, err
	}
	if err := ctx.Err(); err != nil {
		return Blob{}, err
	}
	fi, err := s.root.Stat(rel(h))
	if errors.Is(err, fs.ErrNotExist) {
		return Blob{}, deploy.Errorf(deploy.KindNotFound, "blob %s not found", h)
	}
	if err != nil {
		return Blob{}, fmt.Errorf("stat blob: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Blob{}, fmt.Errorf("stat blob %s: not a regular file", h)
	}
	return Blob{SHA256: h, Size: fi.Size()}, nil
}

// Open opens the blob h for reading; KindNotFound if it is not stored. The
// caller closes the object.
func (s *Store) Open(ctx context.Context, h string) (Object, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.root.Open(rel(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, deploy.Errorf(deploy.KindNotFound, "blob %s not found", h)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return &fileObject{File: f, size: fi.Size(), mtime: fi.ModTime()}, nil
}

// Remove deletes the blob h. A missing blob is not an error. The caller must
// know that no record references h.
func (s *Store) Remove(ctx context.Context, h string) error {
	if err := checkHash(h); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.root.Remove(rel(h))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Windows refuses to delete read-only files.
		if cerr := s.root.Chmod(rel(h), 0o600); cerr == nil {
			err = s.root.Remove(rel(h))
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove blob: %w", err)
	}
	return nil
}

// BlobInfo is a stored blob with its modification time, for garbage
// collection.
type BlobInfo struct {
	Blob
	ModTime time.Time
}

// Walk calls fn for every stored blob, in no particular order, stopping at
// the first error fn returns. Files under sha256/ that are not named by
// their hash are skipped.
func (s *Store) Walk(ctx context.Context, fn func(BlobInfo) error) error {
	return fs.WalkDir(s.root.FS(), blobDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		h := d.Name()
		if !ValidHash(h) || p != rel(h) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		return fn(BlobInfo{Blob: Blob{SHA256: h, Size: fi.Size()}, ModTime: fi.ModTime()})
	})
}

// Put stores the content of r and returns its hash and size. The content is
// streamed to a temp file while hashed, never held in memory; it is fsynced
// and renamed into place (read-only) and the directory fsynced before Put
// returns, so a caller may then commit a record that references it. If the
// blob already exists the upload is discarded (single-instance storage).
// Put stops between chunks when ctx is cancelled. On any error the temp
// file is removed and nothing is stored, with one exception: if fsyncing
// the directory fails after the rename, the (complete) blob stays, and is
// garbage once nothing references it.
func (s *Store) Put(ctx context.Context, r io.Reader, opts PutOptions) (Blob, error) {
	if opts.ExpectSHA256 != "" {
		if err := checkHash(opts.ExpectSHA256); err != nil {
			return Blob{}, fmt.Errorf("expected hash: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return Blob{}, err
	}
	f, tmp, err := s.createTemp()
	if err != nil {
		return Blob{}, fmt.Errorf("put: %w", err)
	}
	published := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !published {
			s.root.Remove(tmp)
		}
	}()

	h := sha256.New()
	n, err := s.copy(ctx, &hashWriter{w: f, h: h}, r, opts.MaxSize)
	if err != nil {
		return Blob{}, fmt.Errorf("put: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if opts.ExpectSHA256 != "" && sum != opts.ExpectSHA256 {
		return Blob{}, deploy.Errorf(deploy.KindInvalid,
			"content hash mismatch: expected sha256 %s, got %s (%d bytes)", opts.ExpectSHA256, sum, n)
	}
	b := Blob{SHA256: sum, Size: n}

	if _, err := s.root.Lstat(rel(sum)); err == nil {
		s.touch(sum)
		return b, nil
	}
	if err := f.Chmod(blobMode); err != nil {
		return Blob{}, fmt.Errorf("put: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Blob{}, fmt.Errorf("put: sync temp file: %w", err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return Blob{}, fmt.Errorf("put: close temp file: %w", err)
	}
	f = nil

	sub := path.Dir(rel(sum))
	newDir := false
	if err := s.root.Mkdir(sub, dirMode); err == nil {
		newDir = true
	} else if !errors.Is(err, fs.ErrExist) {
		return Blob{}, fmt.Errorf("put: %w", err)
	}
	if err := s.root.Rename(tmp, rel(sum)); err != nil {
		// A concurrent Put of the same content may have won (Windows
		// refuses to rename onto an existing file); its blob is identical.
		if _, serr := s.root.Lstat(rel(sum)); serr == nil {
			return b, nil
		}
		return Blob{}, fmt.Errorf("put: publish blob: %w", err)
	}
	published = true
	if err := s.syncDir(sub); err != nil {
		return Blob{}, fmt.Errorf("put: %w", err)
	}
	if newDir {
		if err := s.syncDir(blobDir); err != nil {
			return Blob{}, fmt.Errorf("put: %w", err)
		}
	}
	return b, nil
}

// createTemp creates a new, exclusive temp file in tmp/.
func (s *Store) createTemp() (*os.File, string, error) {
	for range 10 {
		name := tmpDir + "/put-" + rand.Text()
		f, err := s.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("create temp file: %w", err)
		}
		return f, name, nil
	}
	return nil, "", errors.New("create temp file: too many name collisions")
}

// copy streams r to w with a pooled buffer, checking ctx between chunks and
// enforcing max (if positive). Errors from r keep their kind if they are
// domain errors (e.g. a body limit mapped by the caller).
func (s *Store) copy(ctx context.Context, w io.Writer, r io.Reader, max int64) (int64, error) {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	src := io.Reader(&ctxReader{ctx: ctx, r: r})
	if max > 0 {
		src = io.LimitReader(src, max+1)
	}
	n, err := io.CopyBuffer(w, src, *bp)
	switch {
	case err != nil && ctx.Err() != nil:
		return n, ctx.Err()
	case errors.Is(err, errWrite):
		return n, err
	case err != nil:
		return n, fmt.Errorf("read: %w", err)
	case max > 0 && n > max:
		return n, deploy.Errorf(deploy.KindTooLarge, "content exceeds the limit of %d bytes", max)
	}
	return n, nil
}

// touch refreshes the modification time of an existing blob, so that a
// garbage collector sparing recent blobs keeps one an upload just reused.
func (s *Store) touch(h string) {
	now := time.Now()
	_ = s.root.Chtimes(rel(h), now, now) // best effort: the blob is there either way
}

func (s *Store) syncDir(name string) error {
	d, err := s.root.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isSyncUnsupported(err) {
		return fmt.Errorf("sync directory %s: %w", name, err)
	}
	return nil
}

// isSyncUnsupported reports errors of platforms (Windows) and filesystems
// that cannot fsync a directory; the rename is then as durable as it gets.
func isSyncUnsupported(err error) bool {
	return errors.Is(err, errors.ErrUnsupported) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrInvalid)
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var errWrite = errors.New("write")

// hashWriter writes to w and h, marking write errors so that copy can tell
// them from read errors. (Hashing each chunk on a second goroutine while it
// is written was tried: no measurable gain on a 2-vCPU VM, so it stays
// simple.)
type hashWriter struct {
	w io.Writer
	h hash.Hash
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	if err != nil {
		return n, fmt.Errorf("%w: %w", errWrite, err)
	}
	return n, nil
}
