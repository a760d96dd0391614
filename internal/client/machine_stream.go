package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// OpenContent opens version no of the File (or URL) content item id as a
// stream, without staging it anywhere: the disk steps read an image from
// it straight onto a disk. When the connection is cut part way, the next
// Read re-requests the rest (Range from the bytes already delivered,
// If-Range with the ETag, which the server makes the SHA-256) up to a few
// times, RetryDelay apart; the reader sees one unbroken stream. If the
// server answers a resume with the whole object (the content changed), the
// stream fails rather than deliver mixed bytes. The stream does not check
// the SHA-256 itself: the caller hashes what it consumes (disk.ApplyRaw
// takes ContentInfo.Version.SHA256 as its expectSHA256).
func (m *Machine) OpenContent(ctx context.Context, id string, no int) (io.ReadCloser, *ContentInfo, error) {
	info, err := m.ContentInfo(ctx, id, no)
	if err != nil {
		return nil, nil, err
	}
	rc, err := m.openContent(ctx, id, no, info, 0)
	if err != nil {
		return nil, nil, err
	}
	return rc, info, nil
}

// OpenContentAt is OpenContent from byte off of the version info
// describes (an HTTP Range request with If-Range when off > 0): the rest
// of an image a multicast session did not deliver.
func (m *Machine) OpenContentAt(ctx context.Context, info *ContentInfo, off int64) (io.ReadCloser, error) {
	return m.openContent(ctx, info.Item.ID, info.Version.VersionNo, info, off)
}

func (m *Machine) openContent(ctx context.Context, id string, no int, info *ContentInfo, off int64) (io.ReadCloser, error) {
	ref := fmt.Sprintf("%s:%d", id, no)
	s := &contentStream{m: m, ctx: ctx, size: info.Version.ContentSize, ref: ref, auth: true, hc: m.hc, off: off}
	switch info.Item.Type {
	case deploy.ContentFile:
		s.url = fmt.Sprintf("%s/v1/content/%s/%d/data", m.base, esc(id), no)
	case deploy.ContentURL:
		s.url = deploy.Str(info.Version.ExternalURL)
		if s.url == "" {
			return nil, deploy.Errorf(deploy.KindInvalid, "content %s is of type URL but has no externalURL", ref)
		}
		// The external host gets neither our token nor our CA pin.
		s.auth, s.hc, s.size = false, http.DefaultClient, -1
	default:
		return nil, deploy.Errorf(deploy.KindInvalid,
			"content %s is a %s; only File and URL content can be streamed", ref, info.Item.Type)
	}
	if sha := strings.ToLower(info.Version.SHA256); sha != "" {
		s.etag = `"` + sha + `"`
	}
	if s.size <= 0 {
		s.size = -1
	}
	if err := s.open(); err != nil {
		return nil, fmt.Errorf("open content %s: %w", ref, err)
	}
	return s, nil
}

// contentStream is OpenContent's resuming reader. It is not safe for
// concurrent Reads (no io.Reader is).
type contentStream struct {
	m        *Machine
	ctx      context.Context
	hc       *http.Client
	auth     bool
	url, ref string
	etag     string
	size     int64 // -1 when unknown
	off      int64 // bytes delivered to the reader
	body     io.ReadCloser
	resumes  int
	closed   bool
	source   string // SourceOf the last response
}

// Source is "relay" when a branch relay served the stream, else "server".
func (s *contentStream) Source() string {
	if s.source == "" {
		return "server"
	}
	return s.source
}

func (s *contentStream) open() error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.url, http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "*/*")
	if s.off > 0 {
		if s.etag == "" {
			return deploy.Errorf(deploy.KindUnavailable, "transfer cut after %d bytes and the server gave no ETag to resume with", s.off)
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", s.off))
		req.Header.Set("If-Range", s.etag)
	}
	var resp *http.Response
	if s.auth {
		resp, err = s.m.do(req)
	} else {
		resp, err = s.hc.Do(req)
		if err != nil {
			return deploy.Wrap(deploy.KindUnavailable, err, "GET "+s.url)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			resp.Body.Close()
			return deploy.Errorf(kindOfStatus(resp.StatusCode), "GET %s: %s", s.url, resp.Status)
		}
	}
	if err != nil {
		return err
	}
	if s.off > 0 {
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return deploy.Errorf(deploy.KindConflict,
				"content %s changed while it was streamed (a resume from byte %d got %s); start again", s.ref, s.off, resp.Status)
		}
		start, _, err := contentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != s.off {
			resp.Body.Close()
			return deploy.Errorf(deploy.KindInternal, "server answered a resume from byte %d with Content-Range %q", s.off, resp.Header.Get("Content-Range"))
		}
	} else {
		if et := resp.Header.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
			s.etag = et
		}
		if s.size < 0 && resp.ContentLength >= 0 {
			s.size = resp.ContentLength
		}
	}
	s.body = resp.Body
	if s.auth {
		s.source = SourceOf(resp.Header)
	}
	return nil
}

// Read delivers the next bytes, resuming a cut transfer.
func (s *contentStream) Read(p []byte) (int, error) {
	if s.closed {
		return 0, errors.New("read of closed content stream")
	}
	for {
		if s.body == nil {
			if s.resumes >= downloadAttempts {
				return 0, deploy.Errorf(deploy.KindUnavailable, "content %s: transfer cut %d times; giving up after %d bytes", s.ref, s.resumes, s.off)
			}
			s.resumes++
			if err := sleepCtx(s.ctx, s.m.delay(s.resumes)); err != nil {
				return 0, err
			}
			if err := s.open(); err != nil {
				if s.ctx.Err() != nil {
					return 0, s.ctx.Err()
				}
				if transient(err) {
					continue
				}
				return 0, fmt.Errorf("resume content %s at byte %d: %w", s.ref, s.off, err)
			}
		}
		n, err := s.body.Read(p)
		s.off += int64(n)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && (s.size < 0 || s.off >= s.size):
			return n, io.EOF
		}
		// Cut (an error, or EOF short of the size): resume on the next Read.
		s.body.Close()
		s.body = nil
		if s.ctx.Err() != nil {
			return n, s.ctx.Err()
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Close ends the stream.
func (s *contentStream) Close() error {
	s.closed = true
	if s.body != nil {
		err := s.body.Close()
		s.body = nil
		return err
	}
	return nil
}

// UploadCapture sends a captured image as a new version of File content
// item itemID (POST /v1/content/{itemID}/versions with the session's
// bearer token), streaming body without buffering it. The server allows it
// only when the session's task sequence has a Capture image step whose
// TargetContentItem is itemID. It returns the new version.
func (m *Machine) UploadCapture(ctx context.Context, itemID string, body io.Reader) (*deploy.ContentVersion, error) {
	if strings.TrimSpace(itemID) == "" {
		return nil, deploy.Errorf(deploy.KindInvalid, "upload capture: no target content item id")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.base+"/v1/content/"+esc(itemID)+"/versions", io.NopCloser(body))
	if err != nil {
		return nil, fmt.Errorf("upload capture: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := m.do(req)
	if err != nil {
		return nil, fmt.Errorf("upload capture to %s: %w", itemID, err)
	}
	defer resp.Body.Close()
	var v deploy.ContentVersion
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("upload capture to %s: decode answer: %w", itemID, err)
	}
	return &v, nil
}
