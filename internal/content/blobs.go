package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"
)

// Blobs is a content-addressed blob store: what the server needs from one.
// Store (a local directory) and s3store.Store (an S3-compatible bucket)
// implement it; the command wiring chooses which (--content). Both keep
// the same promises:
//
//   - a blob is stored once, under its SHA-256, and is either absent or
//     complete under that name: a killed upload leaves nothing visible;
//   - Put streams (bounded memory, no whole file anywhere but its final
//     place), checks opts, and returns only once the blob is durable, so
//     the caller may then commit a row that references it;
//   - Open's Object reads the bytes as stored: ServeBlob and Verify check
//     them against the name.
//
// The contenttest package is the conformance suite every implementation
// passes.
type Blobs interface {
	// Put stores the content of r and returns its hash and size; see
	// Store.Put.
	Put(ctx context.Context, r io.Reader, opts PutOptions) (Blob, error)
	// Stat returns the blob h; KindNotFound if it is not stored.
	Stat(ctx context.Context, h string) (Blob, error)
	// Open opens the blob h for reading; KindNotFound if it is not stored.
	Open(ctx context.Context, h string) (Object, error)
	// Remove deletes the blob h; a missing blob is not an error.
	Remove(ctx context.Context, h string) error
	// Walk calls fn for every stored blob, stopping at fn's first error.
	Walk(ctx context.Context, fn func(BlobInfo) error) error
	// Verify reads the whole blob h: nil if it matches its name, a
	// *CorruptError if not, KindNotFound if it is not stored.
	Verify(ctx context.Context, h string) error
	// SetAside moves a corrupt blob h where no read finds it, keeping its
	// bytes; the next Put of the right bytes stores them anew.
	SetAside(ctx context.Context, h string) error
	// SetAsideBlob reports whether a blob h was set aside as corrupt.
	SetAsideBlob(ctx context.Context, h string) bool
	// Close releases the store.
	Close() error
}

// Object is an open blob: a seekable reader of a known size. Seeking and
// reading from anywhere is what Range requests need.
type Object interface {
	io.ReadSeekCloser
	// Size is the blob's size in bytes as stored.
	Size() int64
	// ModTime is when the blob was last stored (or refreshed by a Put of
	// the same bytes).
	ModTime() time.Time
}

// fileObject is a local blob file as an Object.
type fileObject struct {
	*os.File
	size  int64
	mtime time.Time
}

func (f *fileObject) Size() int64        { return f.size }
func (f *fileObject) ModTime() time.Time { return f.mtime }

// VerifyObject reads obj, the blob named h, to its end and compares its
// hash with h: nil when they match, a *CorruptError when they do not. It
// stops between chunks when ctx is cancelled. Implementations of Blobs
// use it for Verify.
func VerifyObject(ctx context.Context, obj io.Reader, h string) error {
	sum := sha256.New()
	buf := make([]byte, bufSize)
	if _, err := io.CopyBuffer(sum, &ctxReader{ctx: ctx, r: obj}, buf); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("verify blob %s: %w", h, ctx.Err())
		}
		return fmt.Errorf("verify blob %s: read: %w", h, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h {
		return &CorruptError{SHA256: h, Got: got}
	}
	return nil
}

// CheckHash returns a KindInvalid error unless h is 64 lowercase hex
// digits (ValidHash).
func CheckHash(h string) error { return checkHash(h) }

var _ Blobs = (*Store)(nil)
