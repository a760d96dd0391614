package cli

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func TestDownloadIsCheckedAgainstItsHash(t *testing.T) {
	data := []byte("the right bytes")
	h := sha256.Sum256(data)
	v := &deploy.ContentVersion{VersionNo: 2, SHA256: hex.EncodeToString(h[:])}
	for name, tc := range map[string]struct {
		body    []byte
		wantErr bool
	}{
		"right bytes":    {data, false},
		"one bit off":    {[]byte("the right byteS"), true},
		"cut short":      {data[:5], true},
		"an extra bytes": {append(append([]byte{}, data...), '!'), true},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.bin")
			_, err := downloadTo(t.Context(), path, func(w io.Writer) (int64, error) {
				cw, check := checkedWriter(w, deploy.ContentFile, v)
				n, err := cw.Write(tc.body)
				return int64(n), check(err)
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("downloadTo = %v, want error %v", err, tc.wantErr)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if tc.wantErr && len(entries) != 0 {
				t.Errorf("a failed check left %d files behind", len(entries))
			}
			if !tc.wantErr && len(entries) != 1 {
				t.Errorf("the checked download was not written")
			}
		})
	}
}

func TestFolderDownloadIsCheckedAgainstItsManifest(t *testing.T) {
	tarOf := func(files map[string]string) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
			if body, ok := files[name]; ok {
				tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644})
				tw.Write([]byte(body))
			}
		}
		tw.Close()
		return b.Bytes()
	}
	mf := func(name, body string) deploy.ManifestFile {
		h := sha256.Sum256([]byte(body))
		return deploy.ManifestFile{Path: name, Size: int64(len(body)), SHA256: hex.EncodeToString(h[:])}
	}
	v := &deploy.ContentVersion{Manifest: &deploy.Manifest{Files: []deploy.ManifestFile{mf("a.txt", "alpha"), mf("b.txt", "beta")}}}
	for name, tc := range map[string]struct {
		stream  []byte
		wantErr string
	}{
		"whole":        {tarOf(map[string]string{"a.txt": "alpha", "b.txt": "beta"}), ""},
		"changed file": {tarOf(map[string]string{"a.txt": "alphA", "b.txt": "beta"}), `"a.txt" of the download does not match`},
		"missing file": {tarOf(map[string]string{"a.txt": "alpha"}), `"b.txt" of the manifest is missing`},
		"extra file":   {tarOf(map[string]string{"a.txt": "alpha", "b.txt": "beta", "c.txt": "x"}), `"c.txt", which the version's manifest does not list`},
		"cut short":    {tarOf(map[string]string{"a.txt": "alpha", "b.txt": "beta"})[:1538], "not a whole tar stream"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			cw, check := checkedWriter(&out, deploy.ContentFolder, v)
			_, werr := cw.Write(tc.stream)
			err := check(werr)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("check = %v, want %q", err, tc.wantErr)
			}
			if !bytes.Equal(out.Bytes(), tc.stream) {
				t.Error("the stream was not passed through unchanged")
			}
		})
	}
}
