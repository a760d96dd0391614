package cli

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// checkedWriter passes a download through to w and checks it against the
// version: a File's bytes against its SHA-256, a Folder's tar stream file
// by file against its manifest. check is called once the download ended,
// with its error; it returns what the check found wrong (nil after a
// failed download: that error says enough).
func checkedWriter(w io.Writer, typ deploy.ContentType, v *deploy.ContentVersion) (io.Writer, func(error) error) {
	switch {
	case typ == deploy.ContentFile && v.SHA256 != "":
		h := sha256.New()
		return io.MultiWriter(w, h), func(dlErr error) error {
			if dlErr != nil {
				return nil
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != v.SHA256 {
				return fmt.Errorf("the download does not match its hash: it hashes to sha256 %s, version %d is %s", got, v.VersionNo, v.SHA256)
			}
			return nil
		}
	case typ == deploy.ContentFolder && v.Manifest != nil:
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := checkTar(pr, v.Manifest)
			io.Copy(io.Discard, pr) // the rest, so writes never block
			done <- err
		}()
		return io.MultiWriter(w, pw), func(dlErr error) error {
			if dlErr != nil {
				pw.CloseWithError(dlErr)
				<-done
				return nil
			}
			pw.Close()
			return <-done
		}
	}
	return w, func(error) error { return nil }
}

// checkTar reads a Folder version's tar stream and checks that it holds
// exactly the manifest's files with their sizes and hashes.
func checkTar(r io.Reader, m *deploy.Manifest) error {
	want := make(map[string]deploy.ManifestFile, len(m.Files))
	for _, f := range m.Files {
		want[f.Path] = f
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the download is not a whole tar stream: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		f, ok := want[hdr.Name]
		if !ok {
			return fmt.Errorf("the download holds %q, which the version's manifest does not list", hdr.Name)
		}
		delete(want, hdr.Name)
		h := sha256.New()
		n, err := io.Copy(h, tr)
		if err != nil {
			return fmt.Errorf("the download is not a whole tar stream: %w", err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != f.Size || got != f.SHA256 {
			return fmt.Errorf("file %q of the download does not match the manifest: %d bytes with sha256 %s, want %d bytes with %s",
				hdr.Name, n, got, f.Size, f.SHA256)
		}
	}
	for p := range want {
		return fmt.Errorf("file %q of the manifest is missing from the download", p)
	}
	return nil
}
