//go:build linux

package disk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// chunkSize is the buffer for copies that have no decoder of their own to
// write from (xz, capture, read-back): large and a multiple of any sector
// size, so block devices see few, aligned writes.
const chunkSize = 4 << 20

// Compression is the encoding of a raw image stream.
type Compression string

const (
	Auto Compression = "auto" // sniffed from the first bytes
	Raw  Compression = "raw"
	Gzip Compression = "gzip"
	Xz   Compression = "xz"
	Zstd Compression = "zstd"
)

// Sniff names the compression whose magic number starts b, Raw otherwise.
func Sniff(b []byte) Compression {
	switch {
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return Xz
	}
	return Raw
}

// Written reports what ApplyRaw wrote.
type Written struct {
	Format      Compression // the compression actually decoded
	InputBytes  int64       // bytes read from r (the stored, compressed form)
	InputSHA256 string      // hex SHA-256 of those bytes
	Bytes       int64       // decompressed bytes written to the target
	SHA256      string      // hex SHA-256 of the bytes written, confirmed by reading them back
}

// ErrTooLarge is wrapped by ApplyRaw when the image does not fit the limit.
var ErrTooLarge = errors.New("image is larger than the target")

// ApplyRaw streams the image r, decompressing it per format, onto dst (a
// block device or an existing image file) starting at byte offset, never
// holding the image in memory. limit is the room at offset (the partition or
// disk size); an image that would pass it is refused before anything is
// written past offset+limit. expectSHA256, when set, is the hex SHA-256 of
// r's bytes (the content item's stored, compressed form) and is checked once
// r is drained; then dst is fsynced. Unless WithoutReadBack is given, the
// written range is then read back (with the page cache dropped) and its
// SHA-256 compared with that of the bytes written. progress, if set, gets
// the running count of bytes written. r should end when ctx is cancelled (an
// HTTP body does), since ApplyRaw waits for the goroutines reading it.
// Whole-disk images (ChromeOS Flex, IGEL) are offset 0, limit = disk size.
func ApplyRaw(ctx context.Context, dst string, offset, limit int64, r io.Reader, format Compression,
	expectSHA256 string, progress func(n int64), opts ...ApplyOption) (Written, error) {
	var o applyOpts
	for _, opt := range opts {
		opt(&o)
	}
	var w Written
	if offset < 0 || limit <= 0 {
		return w, deploy.Errorf(deploy.KindInvalid, "apply to %s: bad range offset %d limit %d", dst, offset, limit)
	}
	expectSHA256 = strings.ToLower(strings.TrimSpace(expectSHA256))
	if expectSHA256 != "" && (len(expectSHA256) != 64 || strings.Trim(expectSHA256, "0123456789abcdef") != "") {
		return w, deploy.Errorf(deploy.KindInvalid, "apply to %s: expected SHA-256 %q is not 64 hex digits", dst, expectSHA256)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		return w, fmt.Errorf("apply to %s: %w", dst, err)
	}
	defer f.Close()
	if size, err := f.Seek(0, io.SeekEnd); err == nil && size > 0 && offset+limit > size {
		return w, deploy.Errorf(deploy.KindInvalid, "apply to %s: range ends at %d, past the target's end at %d", dst, offset+limit, size)
	}

	in := newHashReader(r)
	defer in.stop()
	dec, closeDec, err := decoder(in, format, &w.Format)
	if err != nil {
		return w, fmt.Errorf("apply to %s: %w", dst, err)
	}
	defer closeDec()

	tw := &targetWriter{ctx: ctx, f: f, offset: offset, limit: limit, progress: progress}
	if !o.skipReadBack {
		tw.h = sha256.New()
	}
	err = writeStream(tw, dec)
	n := tw.n
	w.Bytes = n
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return w, fmt.Errorf("apply to %s: %w: more than %d bytes (%s) do not fit at offset %d", dst, err, limit, FormatSize(limit), offset)
		}
		if ctx.Err() != nil {
			return w, fmt.Errorf("apply to %s: %w after %d bytes", dst, ctx.Err(), n)
		}
		if tw.err != nil { // the disk failed, not the image
			return w, fmt.Errorf("apply to %s: %w", dst, err)
		}
		return w, fmt.Errorf("apply to %s: %s stream after %d bytes: %w", dst, w.Format, n, err)
	}
	// Drain what the decoder did not need (trailing padding) so the input
	// hash covers the whole stored object.
	if _, err := io.Copy(io.Discard, in); err != nil {
		return w, fmt.Errorf("apply to %s: read input: %w", dst, err)
	}
	w.InputBytes, w.InputSHA256 = in.n, in.sum()
	if tw.h != nil {
		w.SHA256 = hex.EncodeToString(tw.h.Sum(nil))
	}
	if expectSHA256 != "" && w.InputSHA256 != expectSHA256 {
		return w, deploy.Errorf(deploy.KindInvalid, "apply to %s: input SHA-256 is %s, expected %s (%d bytes were written and must not be trusted)",
			dst, w.InputSHA256, expectSHA256, n)
	}
	if err := f.Sync(); err != nil {
		return w, fmt.Errorf("apply to %s: sync: %w", dst, err)
	}
	if o.skipReadBack {
		return w, nil
	}
	got, err := hashRange(ctx, dst, offset, n)
	if err != nil {
		return w, fmt.Errorf("apply to %s: verify: %w", dst, err)
	}
	if got != w.SHA256 {
		return w, fmt.Errorf("apply to %s: verify: read back SHA-256 %s differs from written %s", dst, got, w.SHA256)
	}
	return w, nil
}

// ApplyOption adjusts ApplyRaw.
type ApplyOption func(*applyOpts)

type applyOpts struct{ skipReadBack bool }

// WithoutReadBack skips reading the written bytes back from the device and
// hashing them a second time. The input's SHA-256 (checked against
// expectSHA256) still proves that exactly the stored image was decoded and
// written, and fsync still reports I/O errors; only a device that silently
// loses or corrupts acknowledged writes goes unnoticed. Written.SHA256 is
// then empty.
func WithoutReadBack() ApplyOption { return func(o *applyOpts) { o.skipReadBack = true } }

func decoder(in io.Reader, format Compression, actual *Compression) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(in, 64<<10)
	if format == "" || format == Auto {
		magic, _ := br.Peek(6)
		format = Sniff(magic)
	}
	*actual = format
	switch format {
	case Raw:
		return br, func() {}, nil
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip header: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case Xz:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("xz header: %w", err)
		}
		return xr, func() {}, nil
	case Zstd:
		// Concurrency is also the depth of the decoder's pipeline between
		// its reading, sequence-decoding and executing goroutines. With
		// two cores and the input hash competing for them, a deep pipeline
		// lets the decoder run ahead instead of stalling on each handoff.
		// Low-memory mode sizes each block decoder's sequence buffer to
		// what the stream needs (2.3 MB each otherwise), which keeps the
		// garbage collector and page faults out of the way. bench/apply.sh
		// measured 0.79-0.83 of `zstd -dc | dd` at depth 4 (the default's
		// ceiling) and 1.07-1.14 at depth 16 in low-memory mode, for
		// 33 MB of buffers in all.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(16), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(1<<31))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return nil, nil, deploy.Errorf(deploy.KindInvalid, "unknown compression %q", format)
}

// targetWriter writes a stream to f from offset on, refusing any write that
// would pass limit. Decoders that implement io.WriterTo (zstd, gzip, bufio)
// hand it their own decoded blocks, so no byte is copied between decoding
// and the write system call; the zstd decoder keeps decoding the next blocks
// on its own goroutines meanwhile.
type targetWriter struct {
	ctx      context.Context
	f        *os.File
	offset   int64
	limit    int64
	n        int64     // bytes written so far
	h        hash.Hash // of the bytes written; nil unless they are read back
	progress func(int64)
	err      error // the writer's own failure, kept apart from the decoder's
}

func (w *targetWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		w.err = err
		return 0, err
	}
	if w.n+int64(len(p)) > w.limit {
		w.err = ErrTooLarge
		return 0, ErrTooLarge
	}
	k, err := w.f.WriteAt(p, w.offset+w.n)
	if w.h != nil {
		w.h.Write(p[:k])
	}
	w.n += int64(k)
	if err != nil {
		w.err = fmt.Errorf("write at %d: %w", w.offset+w.n, err)
		return k, w.err
	}
	if w.progress != nil {
		w.progress(w.n)
	}
	return k, nil
}

// writeStream copies src to w: through src's own WriteTo where it has one,
// else in chunkSize reads. It returns w's error in preference to src's, so
// the caller can tell a full or failing disk from a corrupt stream.
func writeStream(w *targetWriter, src io.Reader) error {
	var buf []byte
	if _, ok := src.(io.WriterTo); !ok {
		buf = make([]byte, chunkSize)
	}
	_, err := io.CopyBuffer(w, src, buf)
	if w.err != nil {
		return w.err
	}
	return err
}

// hashRange returns the hex SHA-256 of length bytes of path at offset,
// asking the kernel to drop its cached pages first so the bytes come from the
// device.
func hashRange(ctx context.Context, path string, offset, length int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	_ = unix.Fadvise(int(f.Fd()), offset, length, unix.FADV_DONTNEED)
	h := sha256.New()
	buf := make([]byte, chunkSize)
	for pos := int64(0); pos < length; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n := min(int64(len(buf)), length-pos)
		if _, err := f.ReadAt(buf[:n], offset+pos); err != nil {
			return "", fmt.Errorf("read at %d: %w", offset+pos, err)
		}
		h.Write(buf[:n])
		pos += n
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashReader counts and hashes what is read through it. The hashing runs
// on its own goroutine (fed copies of each read), so hashing the stored
// image overlaps decompression instead of adding to it.
type hashReader struct {
	r    io.Reader
	n    int64
	todo chan []byte
	pool chan []byte
	done chan string
}

func newHashReader(r io.Reader) *hashReader {
	const bufs = 8
	h := &hashReader{r: r, todo: make(chan []byte, bufs), pool: make(chan []byte, bufs), done: make(chan string, 1)}
	for range bufs {
		h.pool <- make([]byte, 256<<10)
	}
	todo, pool, done := h.todo, h.pool, h.done
	go func() {
		sum := sha256.New()
		for b := range todo {
			sum.Write(b)
			pool <- b[:cap(b)]
		}
		done <- hex.EncodeToString(sum.Sum(nil))
	}()
	return h
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	for rest := p[:n]; len(rest) > 0; {
		b := <-h.pool
		k := copy(b, rest)
		h.todo <- b[:k]
		rest = rest[k:]
	}
	h.n += int64(n)
	return n, err
}

// sum ends the hashing and returns the hex SHA-256 of everything read.
func (h *hashReader) sum() string {
	close(h.todo)
	h.todo = nil
	return <-h.done
}

// stop ends the hashing goroutine if sum was not called (an error path).
func (h *hashReader) stop() {
	if h.todo != nil {
		close(h.todo)
		h.todo = nil
		<-h.done
	}
}
