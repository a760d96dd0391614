package tlsca_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/tlsca"
)

// TestWriteCA installs a CA made elsewhere (another replica's) and checks
// that the server certificate is then issued from it; a CA that does not
// parse or whose key is another's is refused and nothing is written.
func TestWriteCA(t *testing.T) {
	now := time.Now()
	ca, err := tlsca.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsca.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]tlsca.CA{
		"not PEM":       {Cert: []byte("junk"), Key: ca.Key},
		"another's key": {Cert: ca.Cert, Key: other.Key},
	} {
		dir := filepath.Join(t.TempDir(), "tls")
		if err := tlsca.WriteCA(dir, bad); err == nil {
			t.Errorf("%s: WriteCA accepted it", name)
		}
		if _, err := tlsca.ReadCA(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: after a refused WriteCA, ReadCA = %v, want not exist", name, err)
		}
	}

	dir := filepath.Join(t.TempDir(), "tls")
	if err := tlsca.WriteCA(dir, ca); err != nil {
		t.Fatal(err)
	}
	got, err := tlsca.ReadCA(dir)
	if err != nil || !bytes.Equal(got.Cert, ca.Cert) || !bytes.Equal(got.Key, ca.Key) {
		t.Fatalf("ReadCA after WriteCA = %v, want what was written", err)
	}
	m, err := tlsca.LoadOrCreate(dir, []string{"localhost"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Certificate.Leaf.CheckSignatureFrom(m.CA); err != nil || !bytes.Equal(m.CAPEM, ca.Cert) {
		t.Fatalf("server certificate not issued by the written CA: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}
