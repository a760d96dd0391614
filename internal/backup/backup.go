// Package backup is the archive of `imprint backup` and `imprint restore`:
// a zstd-compressed tar whose first member, MANIFEST.json, names every
// other member with its size and SHA-256, so that a restore checks the
// whole archive before it writes anything.
//
// Members: db.jsonl (the logical dump of one database snapshot, which
// loads into SQLite or PostgreSQL, see sqlstore.Dump), tls/* (the CA and
// server certificate and keys) and, when taken with blobs,
// blobs/SHA256 (every content blob the snapshot references).
package backup

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
)

// Format is the archive format version this package writes and reads.
const Format = 1

// Member names.
const (
	ManifestName = "MANIFEST.json"
	DBName       = "db.jsonl"
	TLSDir       = "tls/"
	BlobsDir     = "blobs/"
)

// maxManifest bounds the manifest a restore reads into memory.
const maxManifest = 64 << 20

// Manifest describes an archive.
type Manifest struct {
	Format  int       `json:"format"`
	Server  string    `json:"server"` // version of the imprint that wrote it
	Created time.Time `json:"created"`
	Schema  int       `json:"schemaVersion"`
	// Tables are each table's rows and canonical hash at the snapshot
	// (sqlstore.Export's sums): a restore checks what it loaded against them.
	Tables []sqlstore.TableSum `json:"tables"`
	// Blobs are the content blobs the snapshot references; with
	// BlobsIncluded each is a member blobs/SHA256.
	Blobs         []string `json:"blobs"`
	BlobsIncluded bool     `json:"blobsIncluded"`
	// MissingBlobs are referenced blobs the content store no longer had
	// when the backup was taken (lost before it: imprint content verify).
	MissingBlobs []string `json:"missingBlobs,omitempty"`
	Members      []Member `json:"members"`
}

// Member is one file of the archive after the manifest.
type Member struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Source is a member to write: its description and how to read its bytes.
type Source struct {
	Member
	Open func() (io.ReadCloser, error)
}

// Version is the version of this binary as Go recorded it (module
// version, else the VCS revision), "devel" when unknown.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return "devel+" + s.Value
		}
	}
	return "devel"
}

// Write writes the archive: m (with m.Members set from srcs) first, then
// each source in order. A source whose bytes do not match its size and
// SHA-256 ends the archive with an error, so that a backup never holds
// a member its manifest does not describe.
func Write(w io.Writer, m *Manifest, srcs []Source) error {
	m.Format = Format
	m.Members = m.Members[:0]
	for _, s := range srcs {
		if err := checkName(s.Name); err != nil {
			return err
		}
		m.Members = append(m.Members, s.Member)
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tw := tar.NewWriter(zw)
	hdr := func(name string, size int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: m.Created, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(ManifestName, int64(len(mb)))); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := tw.Write(mb); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	for _, s := range srcs {
		if err := writeMember(tw, hdr(s.Name, s.Size), s); err != nil {
			return fmt.Errorf("backup: %s: %w", s.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

func writeMember(tw *tar.Writer, h *tar.Header, s Source) error {
	rc, err := s.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, sum), io.LimitReader(rc, s.Size))
	if err != nil {
		return err
	}
	if n != s.Size {
		return fmt.Errorf("read %d bytes, want %d", n, s.Size)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != s.SHA256 {
		return fmt.Errorf("content has SHA-256 %s, want %s (changed or corrupt while read)", got, s.SHA256)
	}
	return nil
}

// checkName accepts only the member names this package writes.
func checkName(name string) error {
	clean := path.Clean(name)
	if clean != name || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "..") || name == ManifestName {
		return fmt.Errorf("backup: member name %q is not allowed", name)
	}
	base := path.Base(name)
	switch {
	case name == DBName:
	case strings.HasPrefix(name, TLSDir) && path.Dir(name)+"/" == TLSDir && base != "." && !strings.HasPrefix(base, "."):
	case strings.HasPrefix(name, BlobsDir) && path.Dir(name)+"/" == BlobsDir && isSHA256(base):
	default:
		return fmt.Errorf("backup: member name %q is not allowed", name)
	}
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// Read reads an archive from r: its manifest, then each member in order,
// calling fn with the member and a reader of its bytes. The reader
// returns an error instead of io.EOF when the bytes do not match the
// manifest's size and SHA-256 (so a consumer that reads to the end, as
// sqlstore.Load does, fails before it commits); Read checks again after
// fn returns, and fails on a member the manifest does not name, a missing
// one, or anything after the last. fn nil only verifies.
func Read(r io.Reader, fn func(m *Manifest, mem Member, r io.Reader) error) (*Manifest, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, corrupt("not a zstd stream: %v", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		return nil, corrupt("no manifest: %v", err)
	}
	if h.Name != ManifestName || h.Size > maxManifest {
		return nil, corrupt("the first member is %q, not %s", h.Name, ManifestName)
	}
	mb, err := io.ReadAll(tr)
	if err != nil {
		return nil, corrupt("reading the manifest: %v", err)
	}
	m := new(Manifest)
	if err := json.Unmarshal(mb, m); err != nil {
		return nil, corrupt("the manifest is not valid JSON: %v", err)
	}
	if m.Format != Format {
		return nil, deploy.Errorf(deploy.KindInvalid, "backup is of format %d; this imprint reads format %d", m.Format, Format)
	}
	seen := map[string]bool{}
	for _, mem := range m.Members {
		if err := checkName(mem.Name); err != nil || seen[mem.Name] || mem.Size < 0 {
			return nil, corrupt("the manifest lists an invalid or repeated member %q", mem.Name)
		}
		seen[mem.Name] = true
	}
	for _, mem := range m.Members {
		h, err := tr.Next()
		if err != nil {
			return nil, corrupt("member %s is missing (archive truncated?): %v", mem.Name, err)
		}
		if h.Name != mem.Name || h.Typeflag != tar.TypeReg {
			return nil, corrupt("found member %q where the manifest lists %s", h.Name, mem.Name)
		}
		if h.Size != mem.Size {
			return nil, corrupt("member %s is %d bytes, the manifest says %d", mem.Name, h.Size, mem.Size)
		}
		vr := &verifier{r: tr, mem: mem, sum: sha256.New()}
		if fn != nil {
			if err := fn(m, mem, vr); err != nil {
				return nil, err
			}
		}
		if _, err := io.Copy(io.Discard, vr); err != nil {
			return nil, err
		}
	}
	if h, err := tr.Next(); err == nil {
		return nil, corrupt("member %q is not in the manifest", h.Name)
	} else if !errors.Is(err, io.EOF) {
		return nil, corrupt("after the last member: %v", err)
	}
	// Read the stream to its end: the tar's padding and the zstd frame's
	// checksum, which covers every byte, are checked only there.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, corrupt("at the end of the archive: %v", err)
	}
	return m, nil
}

// verifier reads one member and checks its size and hash at its end.
type verifier struct {
	r   io.Reader
	mem Member
	sum hash.Hash
	n   int64
	err error
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.sum.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		if v.n != v.mem.Size {
			v.err = corrupt("member %s ends after %d bytes, the manifest says %d (archive truncated?)", v.mem.Name, v.n, v.mem.Size)
		} else if got := hex.EncodeToString(v.sum.Sum(nil)); got != v.mem.SHA256 {
			v.err = corrupt("member %s has SHA-256 %s, the manifest says %s", v.mem.Name, got, v.mem.SHA256)
		} else {
			v.err = io.EOF
		}
		return n, v.err
	}
	if err != nil {
		v.err = corrupt("reading member %s: %v (archive truncated?)", v.mem.Name, err)
		return n, v.err
	}
	return n, nil
}

func corrupt(format string, args ...any) error {
	return deploy.Errorf(deploy.KindInvalid, "backup is damaged: "+format, args...)
}
