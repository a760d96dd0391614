//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// WIMImage is a pipable WIM of a small Windows-like tree.
type WIMImage struct {
	Src   string            // the captured directory
	Path  string            // the .wim
	Files map[string]string // path in the image ("/Windows/System32/f1.dll") -> SHA-256
}

// buildWIM captures a tree with a random marker file into a pipable WIM
// (Apply operating system streams it into wimlib-imagex apply -).
func (e *Env) buildWIM(ctx context.Context) *WIMImage {
	t := e.t
	t.Helper()
	w := &WIMImage{Src: filepath.Join(e.Dir, "wimsrc"), Path: filepath.Join(e.Dir, "test.wim"), Files: map[string]string{}}
	files := map[string][]byte{
		"Users/Public/imprint-marker.txt": []byte(randomHex(8) + "\r\n"),
		"Windows/win.ini":                 []byte("[fonts]\r\n"),
	}
	for i := 1; i <= 12; i++ {
		b := make([]byte, i*40000)
		for j := range b {
			b[j] = byte(j*i + j/7) // compressible but not trivially
		}
		copy(b, randomHex(16))
		files[fmt.Sprintf("Windows/System32/f%d.dll", i)] = b
	}
	for name, b := range files {
		p := filepath.Join(w.Src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(w.Src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		_, sum, err := fileDigest(p)
		rel, _ := filepath.Rel(w.Src, p)
		w.Files["/"+filepath.ToSlash(rel)] = sum
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(ctx, "wimlib-imagex", "capture", w.Src, w.Path, "Imprint e2e", "--pipable", "--compress=LZX"); err != nil {
		t.Fatal(err)
	}
	return w
}

// extractSparse copies n bytes at off of path into a new sparse file dst,
// skipping all-zero MiB blocks, so a mostly empty partition copies fast.
func extractSparse(path string, off, n int64, dst string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	r := io.NewSectionReader(in, off, n)
	buf := make([]byte, 1<<20)
	zero := make([]byte, 1<<20)
	var pos int64
	for pos < n {
		k, err := io.ReadFull(r, buf)
		if k > 0 && !bytes.Equal(buf[:k], zero[:k]) {
			if _, werr := out.WriteAt(buf[:k], pos); werr != nil {
				return werr
			}
		}
		pos += int64(k)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if pos != n {
		return fmt.Errorf("%s: only %d of %d bytes at offset %d", path, pos, n, off)
	}
	return out.Truncate(n)
}

// ntfsProblems checks an NTFS volume image holds exactly the WIM's files
// (ntfsls lists, ntfscat reads each one).
func ntfsProblems(ctx context.Context, vol string, w *WIMImage) []string {
	var problems []string
	out, err := run(ctx, "ntfsls", "-R", "-p", "/", vol)
	if err != nil {
		return []string{fmt.Sprintf("ntfsls on the Windows partition: %v", err)}
	}
	listing := string(out)
	for p, want := range w.Files {
		if !strings.Contains(listing, filepath.Base(p)) {
			problems = append(problems, fmt.Sprintf("ntfsls does not list %s", p))
			continue
		}
		f := filepath.Join(filepath.Dir(vol), "ntfscat.out")
		if err := ntfscat(ctx, vol, p, f); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if _, got, err := fileDigest(f); err != nil || got != want {
			problems = append(problems, fmt.Sprintf("%s on NTFS has SHA-256 %s (%v), want %s", p, got, err, want))
		}
		os.Remove(f)
	}
	return problems
}

func ntfscat(ctx context.Context, vol, path, dst string) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ntfscat", vol, path)
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ntfscat %s: %w: %s", path, err, stderr.String())
	}
	return nil
}
