// Package peer shares a File content version between machines deploying
// it on one subnet: the server describes the version as fixed-size chunks
// with a SHA-256 each (Manifest), keeps the list of machines fetching it
// (Registry), and each machine fetches chunks from the others before the
// server (Reader), serving on only chunks it verified (Cache, Handler).
// See docs/ARCHITECTURE.md, "Peer sharing", and docs/security.md.
package peer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// ChunkSize is the size of every chunk but the last: large enough that a
// 512 MiB image is 128 requests, small enough that a machine keeps a few
// dozen in memory to serve on.
const ChunkSize = 4 << 20

// Manifest is a content version cut into chunks: Chunks[i] is the SHA-256
// (hex) of bytes [i*ChunkSize, min((i+1)*ChunkSize, Size)).
type Manifest struct {
	Size      int64    `json:"size"`
	SHA256    string   `json:"sha256"` // of the whole version
	ChunkSize int64    `json:"chunkSize"`
	Chunks    []string `json:"chunks"`
}

// Build reads size bytes from r and returns their manifest; sum is the
// whole content's SHA-256 (hex), checked against what was read when not
// "".
func Build(ctx context.Context, r io.Reader, size int64, sum string) (*Manifest, error) {
	if size < 0 {
		return nil, deploy.Errorf(deploy.KindInvalid, "chunk manifest: size %d is negative", size)
	}
	m := &Manifest{Size: size, ChunkSize: ChunkSize}
	whole := sha256.New()
	buf := make([]byte, ChunkSize)
	for off := int64(0); off < size; off += ChunkSize {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(ChunkSize, size-off)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, deploy.Errorf(deploy.KindInternal, "chunk manifest: content ends before byte %d of %d", off+n, size)
			}
			return nil, fmt.Errorf("chunk manifest: %w", err)
		}
		whole.Write(buf[:n])
		c := sha256.Sum256(buf[:n])
		m.Chunks = append(m.Chunks, hex.EncodeToString(c[:]))
	}
	m.SHA256 = hex.EncodeToString(whole.Sum(nil))
	if sum != "" && !strings.EqualFold(sum, m.SHA256) {
		return nil, deploy.Errorf(deploy.KindInternal, "chunk manifest: content has SHA-256 %s, want %s", m.SHA256, sum)
	}
	return m, nil
}

// Check validates a manifest received from the server against the size
// and SHA-256 of the version it is said to describe.
func (m *Manifest) Check(size int64, sum string) error {
	switch {
	case m.ChunkSize <= 0:
		return deploy.Errorf(deploy.KindInvalid, "chunk manifest: chunk size %d", m.ChunkSize)
	case m.Size != size:
		return deploy.Errorf(deploy.KindInvalid, "chunk manifest: size %d, want %d", m.Size, size)
	case sum != "" && !strings.EqualFold(m.SHA256, sum):
		return deploy.Errorf(deploy.KindInvalid, "chunk manifest: SHA-256 %s, want %s", m.SHA256, sum)
	case int64(len(m.Chunks)) != (size+m.ChunkSize-1)/m.ChunkSize:
		return deploy.Errorf(deploy.KindInvalid, "chunk manifest: %d chunks for %d bytes of %d", len(m.Chunks), size, m.ChunkSize)
	}
	for i, c := range m.Chunks {
		if b, err := hex.DecodeString(c); err != nil || len(b) != sha256.Size {
			return deploy.Errorf(deploy.KindInvalid, "chunk manifest: chunk %d: %q is not a SHA-256", i, c)
		}
	}
	return nil
}

// Len is the length of chunk i.
func (m *Manifest) Len(i int) int64 {
	return min(m.ChunkSize, m.Size-int64(i)*m.ChunkSize)
}

// Verify reports whether data is chunk i as the manifest describes it.
func (m *Manifest) Verify(i int, data []byte) error {
	if i < 0 || i >= len(m.Chunks) {
		return deploy.Errorf(deploy.KindInvalid, "chunk %d is not in the manifest (%d chunks)", i, len(m.Chunks))
	}
	if int64(len(data)) != m.Len(i) {
		return deploy.Errorf(deploy.KindInvalid, "chunk %d has %d bytes, want %d", i, len(data), m.Len(i))
	}
	c := sha256.Sum256(data)
	if got := hex.EncodeToString(c[:]); !strings.EqualFold(got, m.Chunks[i]) {
		return deploy.Errorf(deploy.KindInvalid, "chunk %d has SHA-256 %s, want %s", i, got, m.Chunks[i])
	}
	return nil
}
