package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
)

// corruptDir holds blobs that failed their hash check, set aside so that
// they are never served again and an upload of the right bytes can take
// their place. Nothing reads or removes them: they are evidence.
const corruptDir = "corrupt"

// CorruptError says a stored blob no longer hashes to its name: bitrot, a
// bad disk, or someone editing files under the store.
type CorruptError struct {
	SHA256 string // the blob's name, the hash it should have
	Got    string // what its bytes hash to now ("" if they were not hashed)
	Reason string // when Got is empty: what is wrong
}

func (e *CorruptError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("blob %s is corrupt: %s", e.SHA256, e.Reason)
	}
	return fmt.Sprintf("blob %s is corrupt: its content hashes to %s", e.SHA256, e.Got)
}

// AsCorrupt returns the CorruptError in err's chain, if any.
func AsCorrupt(err error) (*CorruptError, bool) {
	var ce *CorruptError
	ok := errors.As(err, &ce)
	return ce, ok
}

// Verify reads the whole blob h and compares its hash with its name: nil
// when they match, a *CorruptError when they do not, KindNotFound when it
// is not stored. It stops between chunks when ctx is cancelled.
func (s *Store) Verify(ctx context.Context, h string) error {
	f, err := s.Open(ctx, h)
	if err != nil {
		return err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := s.copy(ctx, sum, f, 0); err != nil {
		return fmt.Errorf("verify blob %s: %w", h, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h {
		return &CorruptError{SHA256: h, Got: got}
	}
	return nil
}

// SetAside moves the blob h, which failed its hash check, out of the store
// into corrupt/, keeping its bytes for inspection. The blob is then
// missing: Open says KindNotFound, and the next Put of the right bytes
// stores them anew, which repairs every version that names h. Setting
// aside a blob that is not there is not an error.
func (s *Store) SetAside(ctx context.Context, h string) error {
	if err := checkHash(h); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.root.Mkdir(corruptDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("set aside blob: %w", err)
	}
	err := s.root.Rename(rel(h), path.Join(corruptDir, h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set aside blob %s: %w", h, err)
	}
	return s.syncDir(path.Dir(rel(h)))
}

// SetAsideBlob reports whether a blob h was set aside as corrupt.
func (s *Store) SetAsideBlob(_ context.Context, h string) bool {
	if !ValidHash(h) {
		return false
	}
	_, err := s.root.Lstat(path.Join(corruptDir, h))
	return err == nil
}

// verifyingFile is the blob as http.ServeContent reads it: while the bytes
// are read in order from the start, it hashes them, and on the read that
// reaches the end it compares the hash with the blob's name. On a mismatch
// that last read returns no bytes and a *CorruptError, so the response is
// cut short of its Content-Length and never completes with bad bytes.
type verifyingFile struct {
	f    io.ReadSeeker
	want string
	size int64

	h       hash.Hash
	inOrder bool  // every byte from 0 to hashed went through h
	hashed  int64 // bytes hashed
	full    bool  // the whole blob was read in order and matched
	err     *CorruptError
}

func (v *verifyingFile) Seek(offset int64, whence int) (int64, error) {
	n, err := v.f.Seek(offset, whence)
	if err != nil {
		return n, err
	}
	if n == 0 {
		v.h.Reset()
		v.hashed, v.inOrder = 0, true
	} else if n != v.hashed {
		v.inOrder = false
	}
	return n, nil
}

func (v *verifyingFile) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.f.Read(p)
	if !v.inOrder || n == 0 {
		return n, err
	}
	v.h.Write(p[:n])
	v.hashed += int64(n)
	if v.hashed < v.size {
		return n, err
	}
	v.inOrder = false
	if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
		v.err = &CorruptError{SHA256: v.want, Got: got}
		return 0, v.err
	}
	v.full = true
	return n, err
}

var _ io.ReadSeeker = (*verifyingFile)(nil)
