package backup_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/backup"
)

func src(name string, b []byte) backup.Source {
	h := sha256.Sum256(b)
	return backup.Source{Member: backup.Member{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(h[:])},
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

func archive(t *testing.T, srcs ...backup.Source) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := backup.Write(&buf, &backup.Manifest{Created: time.Unix(1, 0)}, srcs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRoundTrip: what Write wrote, Read gives back member by member,
// each checked against the manifest.
func TestRoundTrip(t *testing.T) {
	blob := bytes.Repeat([]byte("x"), 100_000)
	h := sha256.Sum256(blob)
	a := archive(t, src("db.jsonl", []byte("{}\n")), src("tls/ca.key", []byte("key")), src("blobs/"+hex.EncodeToString(h[:]), blob))
	got := map[string]string{}
	m, err := backup.Read(bytes.NewReader(a), func(_ *backup.Manifest, mem backup.Member, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[mem.Name] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Members) != 3 || m.Format != backup.Format || got["tls/ca.key"] != "key" || len(got["blobs/"+hex.EncodeToString(h[:])]) != len(blob) {
		t.Errorf("read back %d members, format %d: %q", len(m.Members), m.Format, got["tls/ca.key"])
	}
}

// TestWriteRefuses: a source whose bytes differ from what it claims, or
// a member name restore would not write safely, fails the archive.
func TestWriteRefuses(t *testing.T) {
	bad := src("db.jsonl", []byte("one"))
	bad.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("two")), nil }
	for name, s := range map[string]backup.Source{
		"changed bytes": bad,
		"escape":        src("../etc/passwd", []byte("x")),
		"nested":        src("tls/a/b", []byte("x")),
		"blob name":     src("blobs/not-a-hash", []byte("x")),
		"manifest":      src("MANIFEST.json", []byte("x")),
	} {
		if err := backup.Write(io.Discard, &backup.Manifest{}, []backup.Source{s}); err == nil {
			t.Errorf("%s: written", name)
		}
	}
}

// TestReadRefusesDamage: a flipped bit anywhere either fails the read
// or (in the few bits zstd's encoding leaves unused) changes nothing read;
// an archive cut anywhere fails with a "damaged" error.
func TestReadRefusesDamage(t *testing.T) {
	a := archive(t, src("db.jsonl", bytes.Repeat([]byte("row\n"), 5000)), src("tls/ca.crt", []byte("cert")))
	content := func(b []byte) (string, error) {
		var all bytes.Buffer
		_, err := backup.Read(bytes.NewReader(b), func(_ *backup.Manifest, mem backup.Member, r io.Reader) error {
			all.WriteString(mem.Name + "\n")
			_, err := io.Copy(&all, r)
			return err
		})
		return all.String(), err
	}
	want, err := content(a)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := range len(a) {
		for bit := range 8 {
			d := bytes.Clone(a)
			d[i] ^= 1 << bit
			got, err := content(d)
			if err == nil && got != want {
				t.Fatalf("byte %d bit %d flipped: read without error, and different", i, bit)
			}
			if err != nil {
				failed++
			}
		}
	}
	if failed < len(a)*8*9/10 {
		t.Errorf("only %d of %d flipped bits were found", failed, len(a)*8)
	}
	for _, n := range []int{0, 10, len(a) / 2, len(a) - 1} {
		if _, err := backup.Read(bytes.NewReader(a[:n]), nil); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("cut to %d bytes: %v", n, err)
		}
	}
}
