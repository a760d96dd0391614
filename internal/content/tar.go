package content

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// MaxEntries is the most entries (files and directories) a folder tar may
// hold.
const MaxEntries = 1_000_000

// PutTar stores a Folder version sent as a tar stream (the caller removes
// any gzip layer). Each regular file is stored as a blob, streamed; the
// returned manifest lists path, size, permission bits and hash of every
// file, sorted by path, with the total size. Directory entries are checked
// and otherwise ignored: directories are implied by the file paths. A
// leading "./" on names (as written by `tar -C dir .`) is dropped.
//
// Any other entry type (symlink, hard link, device, FIFO, sparse file…), an
// unsafe path (see ValidManifestPath), a duplicate path, a file that is also
// a directory, or more than MaxEntries entries rejects the whole archive
// with a KindInvalid error naming the entry. opts.MaxSize bounds the total
// size (KindTooLarge); opts.ExpectSHA256 is checked against ManifestHash.
//
// On error, blobs already stored by this call are left in place: they may
// be shared with other versions or with a concurrent upload, so only the
// caller's garbage collector, which knows the references, may remove them.
func PutTar(ctx context.Context, b Blobs, r io.Reader, opts PutOptions) (*deploy.Manifest, int64, error) {
	return putTar(ctx, b, r, opts, MaxEntries)
}

// PutTar is the package's PutTar into s.
func (s *Store) PutTar(ctx context.Context, r io.Reader, opts PutOptions) (*deploy.Manifest, int64, error) {
	return putTar(ctx, s, r, opts, s.maxEntries)
}

func putTar(ctx context.Context, s Blobs, r io.Reader, opts PutOptions, maxEntries int) (*deploy.Manifest, int64, error) {
	if opts.ExpectSHA256 != "" {
		if err := checkHash(opts.ExpectSHA256); err != nil {
			return nil, 0, fmt.Errorf("expected hash: %w", err)
		}
	}
	tr := tar.NewReader(r)
	m := &deploy.Manifest{Files: []deploy.ManifestFile{}}
	kinds := map[string]bool{} // path -> isDir, for duplicates and file/dir clashes
	var total int64
	for entries := 1; ; entries++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, tarReadError(err, entries)
		}
		if entries > maxEntries {
			return nil, 0, deploy.Errorf(deploy.KindInvalid, "tar entry %d %q: more than %d entries", entries, truncate(hdr.Name, 200), maxEntries)
		}
		name, isDir, err := entryPath(hdr)
		if err != nil {
			return nil, 0, err
		}
		if name == "" { // "./" itself
			continue
		}
		if err := claim(kinds, name, isDir); err != nil {
			return nil, 0, err
		}
		if isDir {
			continue
		}
		if hdr.Size < 0 {
			return nil, 0, deploy.Errorf(deploy.KindInvalid, "tar entry %q: negative size", name)
		}
		max := int64(0)
		if opts.MaxSize > 0 {
			max = opts.MaxSize - total
			if hdr.Size > max {
				return nil, 0, deploy.Errorf(deploy.KindTooLarge, "tar entry %q: folder exceeds the limit of %d bytes", name, opts.MaxSize)
			}
		}
		b, err := s.Put(ctx, tr, PutOptions{MaxSize: max})
		if err != nil {
			if k := deploy.ErrorKind(err); k == deploy.KindInvalid || k == deploy.KindTooLarge {
				return nil, 0, fmt.Errorf("tar entry %q: %w", name, err)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, 0, deploy.Wrap(deploy.KindInvalid, err, fmt.Sprintf("tar entry %q: archive is truncated", name))
			}
			return nil, 0, fmt.Errorf("tar entry %q: %w", name, err)
		}
		if b.Size != hdr.Size { // tar.Reader guarantees this; be sure
			return nil, 0, deploy.Errorf(deploy.KindInvalid, "tar entry %q: read %d bytes, header says %d", name, b.Size, hdr.Size)
		}
		total += b.Size
		m.Files = append(m.Files, deploy.ManifestFile{
			Path:   name,
			Size:   b.Size,
			Mode:   uint32(hdr.Mode) & 0o777,
			SHA256: b.SHA256,
		})
	}
	sortFiles(m.Files)
	if opts.ExpectSHA256 != "" {
		if got := ManifestHash(m); got != opts.ExpectSHA256 {
			return nil, 0, deploy.Errorf(deploy.KindInvalid,
				"folder manifest hash mismatch: expected sha256 %s, got %s", opts.ExpectSHA256, got)
		}
	}
	return m, total, nil
}

// tarReadError classifies an error from tar.Reader.Next.
func tarReadError(err error, entry int) error {
	var de *deploy.Error
	switch {
	case errors.As(err, &de), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("read tar entry %d: %w", entry, err)
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong), errors.Is(err, io.ErrUnexpectedEOF):
		return deploy.Wrap(deploy.KindInvalid, err, fmt.Sprintf("tar entry %d: not a valid tar archive", entry))
	}
	return fmt.Errorf("read tar entry %d: %w", entry, err)
}

// entryPath returns the manifest path of a tar entry and whether it is a
// directory, or a KindInvalid error naming the entry.
func entryPath(hdr *tar.Header) (string, bool, error) {
	raw := hdr.Name
	bad := func(why string) error {
		return deploy.Errorf(deploy.KindInvalid, "tar entry %q: %s", truncate(raw, 200), why)
	}
	var isDir bool
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archives still use TypeRegA
	case tar.TypeDir:
		isDir = true
	case tar.TypeSymlink:
		return "", false, bad("symbolic links are not allowed")
	case tar.TypeLink:
		return "", false, bad("hard links are not allowed")
	case tar.TypeChar, tar.TypeBlock:
		return "", false, bad("device files are not allowed")
	case tar.TypeFifo:
		return "", false, bad("FIFOs are not allowed")
	default:
		return "", false, bad(fmt.Sprintf("entry type %q is not allowed (only regular files and directories)", hdr.Typeflag))
	}
	if len(raw) > MaxPathLen+2 {
		return "", false, bad("path longer than 4096 bytes")
	}
	name := raw
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	if isDir {
		name = strings.TrimSuffix(name, "/")
		if name == "" || name == "." {
			return "", true, nil
		}
	}
	if err := ValidManifestPath(name); err != nil {
		return "", false, fmt.Errorf("tar entry %q: %w", truncate(raw, 200), err)
	}
	return name, isDir, nil
}

// claim records name as a file or directory, with its parents as
// directories, rejecting duplicates and paths that are both.
func claim(kinds map[string]bool, name string, isDir bool) error {
	if wasDir, ok := kinds[name]; ok {
		switch {
		case isDir && wasDir:
			return nil // a repeated directory entry is harmless
		case isDir || wasDir:
			return deploy.Errorf(deploy.KindInvalid, "tar entry %q: path is both a file and a directory", name)
		default:
			return deploy.Errorf(deploy.KindInvalid, "tar entry %q: duplicate path", name)
		}
	}
	kinds[name] = isDir
	for i := strings.LastIndexByte(name, '/'); i > 0; i = strings.LastIndexByte(name[:i], '/') {
		parent := name[:i]
		wasDir, ok := kinds[parent]
		if ok && !wasDir {
			return deploy.Errorf(deploy.KindInvalid, "tar entry %q: parent %q is a file", name, parent)
		}
		if ok {
			break // its parents were claimed with it
		}
		kinds[parent] = true
	}
	return nil
}

func sortFiles(fs []deploy.ManifestFile) {
	slices.SortFunc(fs, func(a, b deploy.ManifestFile) int { return strings.Compare(a.Path, b.Path) })
}

// ManifestHash returns the SHA-256 (hex) of the canonical JSON of m: files
// sorted by path, fields in declaration order, no insignificant space, and
// an empty list (never null) for no files. It identifies a Folder version.
func ManifestHash(m *deploy.Manifest) string {
	files := []deploy.ManifestFile{}
	if m != nil {
		files = append(files, m.Files...)
	}
	sortFiles(files)
	b, err := json.Marshal(deploy.Manifest{Files: files})
	if err != nil {
		panic("content: marshal manifest: " + err.Error()) // strings and ints cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ValidateManifest checks every path and hash of m and rejects duplicate
// paths and paths that are both a file and a directory, with a KindInvalid
// error naming the file.
func ValidateManifest(m *deploy.Manifest) error {
	if m == nil {
		return deploy.Errorf(deploy.KindInvalid, "manifest is missing")
	}
	if len(m.Files) > MaxEntries {
		return deploy.Errorf(deploy.KindInvalid, "manifest has %d files, more than %d", len(m.Files), MaxEntries)
	}
	kinds := make(map[string]bool, len(m.Files))
	for i, f := range m.Files {
		if err := ValidManifestPath(f.Path); err != nil {
			return fmt.Errorf("manifest file %d: %w", i, err)
		}
		if !ValidHash(f.SHA256) {
			return deploy.Errorf(deploy.KindInvalid, "manifest file %q: sha256 %q is not 64 lowercase hex digits", f.Path, truncate(f.SHA256, 80))
		}
		if f.Size < 0 {
			return deploy.Errorf(deploy.KindInvalid, "manifest file %q: negative size", f.Path)
		}
		if f.Mode&^0o777 != 0 {
			return deploy.Errorf(deploy.KindInvalid, "manifest file %q: mode %#o has bits other than permissions", f.Path, f.Mode)
		}
		if err := claim(kinds, f.Path, false); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
	}
	return nil
}

// WriteTar streams the Folder version m as a tar archive: one regular file
// per manifest entry, in manifest order, with the manifest's mode, an mtime
// of the Unix epoch, uid/gid 0 and no user or group names, so the same
// manifest always gives the same bytes. Each blob is re-hashed as it is
// sent; a blob that no longer matches its hash (bitrot) aborts the stream
// with an error before the archive's end marker; an HTTP handler should
// then abort the response (panic(http.ErrAbortHandler)) so the client sees
// a broken transfer rather than a short archive.
func WriteTar(ctx context.Context, s Blobs, w io.Writer, m *deploy.Manifest) error {
	return WriteTarFrom(ctx, w, m, func(ctx context.Context, mf deploy.ManifestFile) (io.ReadCloser, error) {
		f, err := s.Open(ctx, mf.SHA256)
		if err != nil {
			return nil, err
		}
		if f.Size() != mf.Size {
			f.Close()
			return nil, &CorruptError{SHA256: mf.SHA256, Reason: fmt.Sprintf("it has %d bytes, the manifest says %d", f.Size(), mf.Size)}
		}
		return f, nil
	})
}

// WriteTarFrom is WriteTar with each file's bytes from open (a branch
// relay's cache, say) rather than a blob store: the same archive bytes,
// and each file re-hashed as it is sent.
func WriteTarFrom(ctx context.Context, w io.Writer, m *deploy.Manifest, open func(ctx context.Context, mf deploy.ManifestFile) (io.ReadCloser, error)) error {
	if err := ValidateManifest(m); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	buf := make([]byte, bufSize)
	for _, f := range m.Files {
		if err := writeTarFile(ctx, open, tw, f, buf); err != nil {
			return fmt.Errorf("write tar %q: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	return nil
}

// WriteTar is the package's WriteTar from s.
func (s *Store) WriteTar(ctx context.Context, w io.Writer, m *deploy.Manifest) error {
	return WriteTar(ctx, s, w, m)
}

func writeTarFile(ctx context.Context, open func(ctx context.Context, mf deploy.ManifestFile) (io.ReadCloser, error), tw *tar.Writer, mf deploy.ManifestFile, buf []byte) error {
	f, err := open(ctx, mf)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     mf.Path,
		Size:     mf.Size,
		Mode:     int64(mf.Mode),
		ModTime:  time.Unix(0, 0),
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.CopyBuffer(&hashWriter{w: tw, h: h}, &ctxReader{ctx: ctx, r: io.LimitReader(f, mf.Size)}, buf)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errWrite):
		return err
	case err != nil:
		return fmt.Errorf("read: %w", err)
	}
	if n != mf.Size {
		return deploy.Errorf(deploy.KindInternal, "blob %s: read %d bytes, manifest says %d", mf.SHA256, n, mf.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != mf.SHA256 {
		return &CorruptError{SHA256: mf.SHA256, Got: got}
	}
	return nil
}
