//go:build linux

package disk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// CaptureRaw reads length bytes of src (a disk, partition or image file)
// from offset — length <= 0 means to the end — and writes them to w as one
// zstd stream at the given zstd level (1–22; 0 means 3), streaming in
// 4 MiB pieces. It returns the hex SHA-256 and the byte count of the
// compressed stream written to w: the stored form a content version holds,
// which ApplyRaw's expectSHA256 takes.
func CaptureRaw(ctx context.Context, src string, offset, length int64, w io.Writer, level int) (sha string, n int64, err error) {
	if level == 0 {
		level = 3
	}
	if level < 1 || level > 22 || offset < 0 {
		return "", 0, deploy.Errorf(deploy.KindInvalid, "capture %s: level %d (want 1–22) or offset %d out of range", src, level, offset)
	}
	f, err := os.Open(src)
	if err != nil {
		return "", 0, fmt.Errorf("capture %s: %w", src, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd) // works for block devices too
	if err != nil {
		return "", 0, fmt.Errorf("capture %s: size: %w", src, err)
	}
	if length <= 0 {
		length = size - offset
	}
	if offset+length > size || length <= 0 {
		return "", 0, deploy.Errorf(deploy.KindInvalid, "capture %s: range %d+%d is outside its %d bytes", src, offset, length, size)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	enc, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
	if err != nil {
		return "", 0, fmt.Errorf("capture %s: %w", src, err)
	}
	buf := make([]byte, chunkSize)
	for pos := int64(0); pos < length; {
		if err := ctx.Err(); err != nil {
			enc.Close()
			return "", cw.n, fmt.Errorf("capture %s: %w", src, err)
		}
		k := min(int64(len(buf)), length-pos)
		if _, err := f.ReadAt(buf[:k], offset+pos); err != nil {
			enc.Close()
			return "", cw.n, fmt.Errorf("capture %s: read at %d: %w", src, offset+pos, err)
		}
		if _, err := enc.Write(buf[:k]); err != nil {
			enc.Close()
			return "", cw.n, fmt.Errorf("capture %s: write: %w", src, err)
		}
		pos += k
	}
	if err := enc.Close(); err != nil {
		return "", cw.n, fmt.Errorf("capture %s: finish: %w", src, err)
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
