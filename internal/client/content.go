package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// ContentItems lists every content item.
func (a *Admin) ContentItems(ctx context.Context) ([]deploy.ContentItem, error) {
	var items []deploy.ContentItem
	if err := a.get(ctx, "/admin/v1/content", &items); err != nil {
		return nil, err
	}
	return items, nil
}

// CreateContentItem creates a content item from its name, type, purpose,
// description and tags; the server assigns the id.
func (a *Admin) CreateContentItem(ctx context.Context, item deploy.ContentItem) (*deploy.ContentItem, error) {
	var out deploy.ContentItem
	if err := a.sendJSON(ctx, http.MethodPost, "/admin/v1/content", item, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ContentItem returns one content item with its versions.
func (a *Admin) ContentItem(ctx context.Context, id string) (*deploy.ContentItem, error) {
	var out deploy.ContentItem
	if err := a.get(ctx, "/admin/v1/content/"+esc(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteContentItem deletes a content item and every version of it.
func (a *Admin) DeleteContentItem(ctx context.Context, id string) error {
	return a.del(ctx, "/admin/v1/content/"+esc(id))
}

// Sizer is implemented by upload bodies that know their length; the client
// then sends a Content-Length instead of a chunked body.
type Sizer interface{ Size() int64 }

// AddContentVersion uploads a new version of item itemID. meta carries the
// version's fields (status, description, application and driver fields,
// tags, and for URL items ExternalURL and the optional SHA256). body is
// streamed as it is read, never buffered: a File's bytes, a Folder's tar
// stream (contentType "application/x-tar"), or nil for a URL item. When body
// is an io.Closer (a pipe, say) the transport closes it once done, so a
// writer on the other end never blocks after the server has answered.
func (a *Admin) AddContentVersion(ctx context.Context, itemID string, meta deploy.ContentVersion, body io.Reader, contentType string) (*deploy.ContentVersion, error) {
	mb, err := deploy.EncodeJSON(meta)
	if err != nil {
		return nil, fmt.Errorf("encode version: %w", err)
	}
	r := request{
		method:      http.MethodPost,
		path:        "/admin/v1/content/" + esc(itemID) + "/versions",
		query:       url.Values{"meta": {string(mb)}},
		body:        body,
		contentType: contentType,
	}
	if s, ok := body.(Sizer); ok {
		r.size = s.Size()
	}
	if body != nil && contentType == "" {
		r.contentType = "application/octet-stream"
	}
	var out deploy.ContentVersion
	if err := a.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func versionPath(id string, no int) string {
	return "/admin/v1/content/" + esc(id) + "/versions/" + strconv.Itoa(no)
}

// ContentVersion returns version no of content item id.
func (a *Admin) ContentVersion(ctx context.Context, id string, no int) (*deploy.ContentVersion, error) {
	var out deploy.ContentVersion
	if err := a.get(ctx, versionPath(id, no), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// VersionPatch is a partial update of a content version: only the non-nil
// fields are sent.
type VersionPatch = wire.VersionPatch

// UpdateContentVersion changes the mutable fields of a version.
func (a *Admin) UpdateContentVersion(ctx context.Context, id string, no int, patch VersionPatch) (*deploy.ContentVersion, error) {
	var out deploy.ContentVersion
	if err := a.sendJSON(ctx, http.MethodPatch, versionPath(id, no), patch, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteContentVersion deletes one version; blobs still used elsewhere stay.
func (a *Admin) DeleteContentVersion(ctx context.Context, id string, no int) error {
	return a.del(ctx, versionPath(id, no))
}

// DownloadContentVersion writes the bytes of a File version, or the tar
// stream of a Folder version, to w and returns how many bytes it wrote.
func (a *Admin) DownloadContentVersion(ctx context.Context, id string, no int, w io.Writer) (int64, error) {
	return a.stream(ctx, versionPath(id, no)+"/data", w)
}

// ContentCheck is the answer of POST /admin/v1/content/verify: how many
// blobs the server read and checked, and the ones that cannot be served.
type ContentCheck = wire.ScrubReport

// BlobProblem is a blob whose bytes do not match its hash ("corrupt"; the
// server has set it aside) or that a version names but the store lacks
// ("missing"), with the versions that use it.
type BlobProblem = wire.BlobProblem

// BlobUse is a content version (and a Folder's file) stored in a blob.
type BlobUse = wire.BlobUse

// VerifyContent has the server read every stored blob and compare it
// with its hash. It takes as long as reading the whole store.
func (a *Admin) VerifyContent(ctx context.Context) (*ContentCheck, error) {
	var out ContentCheck
	if err := a.sendJSON(ctx, http.MethodPost, "/admin/v1/content/verify", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
