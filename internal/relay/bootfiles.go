package relay

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// bootFiles is the relay's boot.FileSource: the central server's boot
// image files, kept under DIR/boot/{arch}/{name}. Each open asks the
// central boot port whether the file changed (If-Modified-Since) and uses
// the kept copy when it did not or cannot be reached.
type bootFiles struct {
	dir string
	up  *url.URL
	hc  *http.Client
	log *slog.Logger
}

func (b *bootFiles) Open(arch, name string) (io.ReadSeekCloser, time.Time, int64, error) {
	if strings.ContainsAny(arch+name, `/\`) || strings.HasPrefix(arch, ".") || strings.HasPrefix(name, ".") {
		return nil, time.Time{}, 0, os.ErrNotExist
	}
	path := filepath.Join(b.dir, arch, name)
	if err := b.refresh(arch, name, path); err != nil {
		b.log.Warn("boot file not refreshed from the central server; using the kept copy", "file", arch+"/"+name, "err", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, time.Time{}, 0, err
	}
	return f, fi.ModTime(), fi.Size(), nil
}

func (b *bootFiles) refresh(arch, name, path string) error {
	req, err := http.NewRequest(http.MethodGet, b.up.JoinPath("images", arch, name).String(), nil)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(path); err == nil {
		req.Header.Set("If-Modified-Since", fi.ModTime().UTC().Format(http.TimeFormat))
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil
	case http.StatusNotFound:
		os.Remove(path)
		return nil
	case http.StatusOK:
	default:
		return fmt.Errorf("central boot port answered %s", resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+name+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, resp.Body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		os.Chtimes(tmp.Name(), lm, lm)
	}
	return os.Rename(tmp.Name(), path)
}
