package client

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// Progress is told the bytes done and the total (-1 when unknown) while a
// download runs.
type Progress func(done, total int64)

// downloadAttempts bounds how often a cut transfer is resumed within one
// Download call.
const downloadAttempts = 5

// Download makes version no of content item id available at dst: a File
// (or URL) version becomes the file dst, a Folder version the directory
// dst. A File download resumes from what an earlier, interrupted attempt
// left in dst+".part" (Range from its size, If-Range with the ETag) and is
// checked against the version's SHA-256; a Folder's tar is extracted into
// dst+".part" with every path checked and every file's size and hash
// compared to the manifest, then renamed to dst. When dst already exists
// (and, for a file, has the right hash) nothing is fetched. A transfer cut
// part way is resumed up to a few times, RetryDelay apart.
func (m *Machine) Download(ctx context.Context, id string, no int, dst string, progress Progress) (*ContentInfo, error) {
	info, err := m.ContentInfo(ctx, id, no)
	if err != nil {
		return nil, err
	}
	v := &info.Version
	ref := fmt.Sprintf("%s:%d", id, no)
	switch info.Item.Type {
	case deploy.ContentFile:
		u := fmt.Sprintf("%s/v1/content/%s/%d/data", m.base, esc(id), no)
		err = m.fetchFile(ctx, m.hc, true, u, dst, v.SHA256, v.ContentSize, progress)
	case deploy.ContentURL:
		u := deploy.Str(v.ExternalURL)
		if u == "" {
			return nil, deploy.Errorf(deploy.KindInvalid, "content %s is of type URL but has no externalURL", ref)
		}
		// The external host gets neither our token nor our CA pin.
		err = m.fetchFile(ctx, http.DefaultClient, false, u, dst, v.SHA256, -1, progress)
	case deploy.ContentFolder:
		if v.Manifest == nil {
			return nil, deploy.Errorf(deploy.KindInvalid, "content %s is a Folder without a manifest", ref)
		}
		u := fmt.Sprintf("%s/v1/content/%s/%d/data", m.base, esc(id), no)
		err = m.fetchFolder(ctx, u, dst, v.Manifest, v.ContentSize, progress)
	default:
		return nil, deploy.Errorf(deploy.KindInvalid, "content %s has unknown type %q", ref, info.Item.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", ref, err)
	}
	return info, nil
}

// SetRetryDelay sets the pause before resuming a cut download (1s, 2s, …
// by default); tests set 0.
func (m *Machine) SetRetryDelay(d time.Duration) {
	m.mu.Lock()
	m.retryDelay = &d
	m.mu.Unlock()
}

func (m *Machine) delay(attempt int) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.retryDelay != nil {
		return *m.retryDelay * time.Duration(attempt)
	}
	return time.Second * time.Duration(attempt)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// transient reports whether a failed attempt is worth resuming.
func transient(err error) bool {
	var de *deploy.Error
	if errors.As(err, &de) {
		return de.Kind == deploy.KindUnavailable || de.Kind == deploy.KindInternal && de.Err != nil
	}
	return true
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fetchFile downloads u into dst with resume and hash check.
func (m *Machine) fetchFile(ctx context.Context, hc *http.Client, auth bool, u, dst, wantSHA string, size int64, progress Progress) error {
	wantSHA = strings.ToLower(wantSHA)
	if wantSHA != "" {
		if got, err := hashFile(dst); err == nil && got == wantSHA {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	part, etagPath := dst+".part", dst+".part.etag"
	var err error
	for attempt := 0; attempt < downloadAttempts; attempt++ {
		if attempt > 0 {
			if serr := sleepCtx(ctx, m.delay(attempt)); serr != nil {
				return serr
			}
		}
		err = m.fetchOnce(ctx, hc, auth, u, part, etagPath, wantSHA, size, progress)
		if err == nil || ctx.Err() != nil || !transient(err) {
			break
		}
	}
	if err != nil {
		return err
	}
	if wantSHA != "" {
		got, err := hashFile(part)
		if err != nil {
			return err
		}
		if got != wantSHA {
			_ = os.Remove(part)
			_ = os.Remove(etagPath)
			return deploy.Errorf(deploy.KindInvalid, "downloaded bytes hash to %s, expected %s; the partial file was removed", got, wantSHA)
		}
	}
	if err := os.Rename(part, dst); err != nil {
		return err
	}
	_ = os.Remove(etagPath)
	return nil
}

// fetchOnce makes one request, continuing part from its current size.
func (m *Machine) fetchOnce(ctx context.Context, hc *http.Client, auth bool, u, part, etagPath, wantSHA string, size int64, progress Progress) error {
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	off := fi.Size()
	if size >= 0 && off == size && off > 0 {
		return nil // complete; the caller checks the hash
	}
	if size >= 0 && off > size {
		off = 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "*/*")
	if off > 0 {
		etag := ""
		if b, err := os.ReadFile(etagPath); err == nil {
			etag = strings.TrimSpace(string(b))
		} else if wantSHA != "" {
			etag = `"` + wantSHA + `"`
		}
		if etag != "" {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
			req.Header.Set("If-Range", etag)
		} else {
			off = 0
		}
	}
	var resp *http.Response
	if auth {
		resp, err = m.do(req)
	} else {
		resp, err = hc.Do(req)
		if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
			resp.Body.Close()
			return deploy.Errorf(kindOfStatus(resp.StatusCode), "GET %s: %s", u, resp.Status)
		}
		if err != nil {
			err = deploy.Wrap(deploy.KindUnavailable, err, "GET "+u)
		}
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	total := size
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, length, err := contentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != off {
			return deploy.Errorf(deploy.KindInternal, "server answered a resume from byte %d with Content-Range %q", off, resp.Header.Get("Content-Range"))
		}
		if length >= 0 {
			total = length
		}
	default:
		off = 0
		if resp.ContentLength >= 0 {
			total = resp.ContentLength
		}
	}
	if err := f.Truncate(off); err != nil {
		return err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	if et := resp.Header.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		_ = os.WriteFile(etagPath, []byte(et), 0o644)
	} else {
		_ = os.Remove(etagPath)
	}
	w := io.Writer(f)
	if progress != nil {
		w = &progressWriter{w: f, done: off, total: total, fn: progress}
		progress(off, total)
	}
	n, err := io.Copy(w, resp.Body)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return deploy.Wrap(deploy.KindUnavailable, err, fmt.Sprintf("transfer cut after %d bytes", off+n))
	}
	if total >= 0 && off+n != total {
		return deploy.Errorf(deploy.KindUnavailable, "transfer ended after %d of %d bytes", off+n, total)
	}
	return nil
}

// contentRange parses "bytes START-END/LENGTH" (LENGTH may be *, -1).
func contentRange(s string) (start, length int64, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	rng, l, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	a, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	length = -1
	if l != "*" {
		if length, err = strconv.ParseInt(l, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("bad Content-Range %q", s)
		}
	}
	return start, length, nil
}

type progressWriter struct {
	w           io.Writer
	done, total int64
	fn          Progress
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.fn(p.done, p.total)
	return n, err
}

// fetchFolder downloads a Folder's tar and extracts it, verified, to dst.
func (m *Machine) fetchFolder(ctx context.Context, u, dst string, man *deploy.Manifest, size int64, progress Progress) error {
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		return nil // only a verified extraction is ever renamed to dst
	}
	var err error
	for attempt := 0; attempt < downloadAttempts; attempt++ {
		if attempt > 0 {
			if serr := sleepCtx(ctx, m.delay(attempt)); serr != nil {
				return serr
			}
		}
		err = m.extractOnce(ctx, u, dst, man, size, progress)
		if err == nil || ctx.Err() != nil || !transient(err) {
			break
		}
	}
	return err
}

func (m *Machine) extractOnce(ctx context.Context, u, dst string, man *deploy.Manifest, size int64, progress Progress) error {
	tmp := dst + ".part"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-tar")
	resp, err := m.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if progress != nil {
		var total int64 = -1
		if size > 0 {
			total = size
		}
		body = io.TeeReader(resp.Body, &progressWriter{w: io.Discard, total: total, fn: progress})
	}
	want := make(map[string]deploy.ManifestFile, len(man.Files))
	for _, f := range man.Files {
		want[f.Path] = f
	}
	seen := make(map[string]bool, len(man.Files))
	tr := tar.NewReader(body)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return deploy.Wrap(deploy.KindUnavailable, err, "read folder archive")
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag == tar.TypeDir {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return deploy.Errorf(deploy.KindInvalid, "folder archive entry %q is not a regular file", hdr.Name)
		}
		if err := content.ValidManifestPath(name); err != nil {
			return fmt.Errorf("folder archive: %w", err)
		}
		mf, ok := want[name]
		if !ok {
			return deploy.Errorf(deploy.KindInvalid, "folder archive holds %q, which the manifest does not list", name)
		}
		if seen[name] {
			return deploy.Errorf(deploy.KindInvalid, "folder archive holds %q twice", name)
		}
		seen[name] = true
		if err := writeVerified(tr, filepath.Join(tmp, filepath.FromSlash(name)), mf); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
	for _, f := range man.Files {
		if !seen[f.Path] {
			return deploy.Errorf(deploy.KindUnavailable, "folder archive ended without %q", f.Path)
		}
	}
	return os.Rename(tmp, dst)
}

func writeVerified(r io.Reader, path string, mf deploy.ManifestFile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(mf.Mode & 0o777)
	if mode == 0 {
		mode = 0o644
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode|0o200)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return deploy.Wrap(deploy.KindUnavailable, err, fmt.Sprintf("folder archive cut in %q", mf.Path))
	}
	if n != mf.Size {
		return deploy.Errorf(deploy.KindInvalid, "file %q has %d bytes, the manifest says %d", mf.Path, n, mf.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(mf.SHA256) {
		return deploy.Errorf(deploy.KindInvalid, "file %q hashes to %s, the manifest says %s", mf.Path, got, mf.SHA256)
	}
	return os.Chmod(path, mode)
}
