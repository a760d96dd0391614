package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tarEntry is what a test compares of one archive member.
type tarEntry struct {
	Name string
	Type byte
	Mode int64
	Data string
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask
			t.Fatal(err)
		}
	}
}

func readTar(t *testing.T, r io.Reader) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h.Name, h.Typeflag, h.Mode, string(b)})
	}
}

func TestWriteTarRoundTrip(t *testing.T) {
	root := t.TempDir()
	big := strings.Repeat("0123456789abcdef", 70_000) // > 1 MiB, several pipe writes
	long := strings.Repeat("d", 120) + "/file.txt"    // needs a PAX/GNU long name
	writeTree(t, root, map[string]string{
		"setup.sh":          "#!/bin/sh\necho hi\n",
		"drivers/net/a.inf": "[Version]\n",
		"drivers/big.bin":   big,
		"empty/":            "",
		"zero.txt":          "",
		long:                "deep",
	})
	if err := os.Chmod(filepath.Join(root, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}

	pr := tarPipe(context.Background(), root)
	got := readTar(t, pr)
	want := []tarEntry{
		{strings.Repeat("d", 120) + "/", tar.TypeDir, 0o755, ""},
		{long, tar.TypeReg, 0o644, "deep"},
		{"drivers/", tar.TypeDir, 0o755, ""},
		{"drivers/big.bin", tar.TypeReg, 0o644, big},
		{"drivers/net/", tar.TypeDir, 0o755, ""},
		{"drivers/net/a.inf", tar.TypeReg, 0o644, "[Version]\n"},
		{"empty/", tar.TypeDir, 0o700, ""},
		{"setup.sh", tar.TypeReg, 0o755, "#!/bin/sh\necho hi\n"},
		{"zero.txt", tar.TypeReg, 0o644, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}

	st, err := scanFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 5 || st.Dirs != 4 || st.Bytes != int64(len(big)+len("deep")+len("[Version]\n")+len("#!/bin/sh\necho hi\n")) {
		t.Errorf("scan = %+v", st)
	}
}

func TestTarSizeEstimateExactForShortNames(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a/b.txt": "hello", "c.bin": strings.Repeat("x", 513), "d/": ""})
	var buf bytes.Buffer
	if err := writeTar(context.Background(), &buf, root); err != nil {
		t.Fatal(err)
	}
	st, err := scanFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	if st.TarSize != int64(buf.Len()) {
		t.Errorf("estimated tar size %d, actual %d", st.TarSize, buf.Len())
	}
}

func TestFolderRefusesSymlinks(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a/real.txt": "x"})
	if err := os.Symlink("real.txt", filepath.Join(root, "a", "link.txt")); err != nil {
		t.Fatal(err)
	}
	const want = "folder: a/link.txt is a symbolic link: only regular files and directories can be uploaded"
	if _, err := scanFolder(root); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("scanFolder error = %v, want %q", err, want)
	}
	_, err := io.Copy(io.Discard, tarPipe(context.Background(), root))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("tar stream error = %v, want %q", err, want)
	}
}

func TestFolderNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	writeTree(t, filepath.Dir(f), map[string]string{"file": "x"})
	if _, err := scanFolder(f); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("error = %v", err)
	}
}

func TestTarPipeStopsWhenReaderCloses(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"big": strings.Repeat("z", 1<<20)})
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- writeTar(context.Background(), pw, root) }()
	if _, err := io.ReadFull(pr, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	if err := <-done; !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("writer error = %v, want io.ErrClosedPipe", err)
	}
}
