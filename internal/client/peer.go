package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/peer"
)

// ChunkManifest returns File content id:no's chunk manifest (GET
// /v1/content/{id}/{no}/chunks), for peer sharing.
func (m *Machine) ChunkManifest(ctx context.Context, id string, no int) (*peer.Manifest, error) {
	var out peer.Manifest
	if err := m.callJSON(ctx, http.MethodGet, fmt.Sprintf("/v1/content/%s/%d/chunks", esc(id), no), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// JoinPeers registers this machine's chunk server for content id:no and
// returns the other machines fetching it on its subnet.
func (m *Machine) JoinPeers(ctx context.Context, id string, no int, j peer.Join) (peer.List, error) {
	var out peer.List
	err := m.callJSON(ctx, http.MethodPost, fmt.Sprintf("/v1/content/%s/%d/peers", esc(id), no), j, &out)
	return out, err
}

// LeavePeers ends this machine's registration for content id:no.
func (m *Machine) LeavePeers(ctx context.Context, id string, no int) error {
	return m.callJSON(ctx, http.MethodDelete, fmt.Sprintf("/v1/content/%s/%d/peers", esc(id), no), nil, nil)
}

// ContentChunk fetches n bytes from byte off of File content info
// describes (an HTTP Range request, If-Range on its SHA-256, so a changed
// version is an error rather than other bytes). source is "relay" when a
// branch relay served them, else "server".
func (m *Machine) ContentChunk(ctx context.Context, info *ContentInfo, off, n int64) (b []byte, source string, err error) {
	b, resp, err := m.contentChunk(ctx, info, off, n)
	if resp != nil {
		source = SourceOf(resp.Header)
	}
	return b, source, err
}

// SourceOf is "relay" when a response came from a branch relay's cache
// (its Imprint-Source header), else "server".
func SourceOf(h http.Header) string {
	if strings.EqualFold(h.Get("Imprint-Source"), "relay") {
		return "relay"
	}
	return "server"
}

func (m *Machine) contentChunk(ctx context.Context, info *ContentInfo, off, n int64) ([]byte, *http.Response, error) {
	if info.Item.Type != deploy.ContentFile {
		return nil, nil, deploy.Errorf(deploy.KindInvalid, "content %s is a %s: only File content comes in chunks", info.Item.ID, info.Item.Type)
	}
	path := fmt.Sprintf("/v1/content/%s/%d/data", esc(info.Item.ID), info.Version.VersionNo)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base+path, http.NoBody)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	if sha := strings.ToLower(info.Version.SHA256); sha != "" {
		req.Header.Set("If-Range", `"`+sha+`"`)
	}
	resp, err := m.do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return nil, resp, deploy.Errorf(deploy.KindConflict, "content %s:%d changed (a request for bytes %d-%d got %s)",
			info.Item.ID, info.Version.VersionNo, off, off+n-1, resp.Status)
	}
	if start, _, err := contentRange(resp.Header.Get("Content-Range")); err != nil || start != off {
		return nil, resp, deploy.Errorf(deploy.KindInternal, "server answered a request from byte %d with Content-Range %q", off, resp.Header.Get("Content-Range"))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, n+1))
	if err != nil {
		return nil, resp, fmt.Errorf("GET %s bytes %d-%d: %w", path, off, off+n-1, err)
	}
	if int64(len(b)) != n {
		return nil, resp, deploy.Errorf(deploy.KindUnavailable, "GET %s: got %d bytes from byte %d, want %d", path, len(b), off, n)
	}
	return b, resp, nil
}
