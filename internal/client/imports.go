package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// ImportMode says what an import does when the document's id exists
// already. The zero value refuses (KindConflict): an import never
// overwrites silently.
type ImportMode string

const (
	ImportNew        ImportMode = ""            // refuse an id that exists
	ImportClone      ImportMode = "clone"       // new ids for everything
	ImportNewVersion ImportMode = "new-version" // append the file as the next versions
)

func (m ImportMode) query() url.Values {
	switch m {
	case ImportClone:
		return url.Values{"clone": {"1"}}
	case ImportNewVersion:
		return url.Values{"newVersion": {"1"}}
	}
	return nil
}

func (a *Admin) importDoc(ctx context.Context, path string, r io.Reader, mode ImportMode, out any) error {
	req := request{method: http.MethodPost, path: path, body: r, contentType: "application/json", query: mode.query()}
	return a.call(ctx, req, out)
}

// ImportContentItem imports a DeployR content-item export read from r:
// the item and every version's metadata. File and Folder versions await
// their bytes (FillContentVersion).
func (a *Admin) ImportContentItem(ctx context.Context, r io.Reader, mode ImportMode) (*deploy.ContentItem, error) {
	var out deploy.ContentItem
	if err := a.importDoc(ctx, "/admin/v1/content/import", r, mode, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExportContentItem writes the DeployR JSON of a content item to w.
func (a *Admin) ExportContentItem(ctx context.Context, id string, w io.Writer) error {
	_, err := a.stream(ctx, "/admin/v1/content/"+esc(id)+"/export", w)
	return err
}

// ExportStepDefinition writes the DeployR JSON of a step definition to w.
func (a *Admin) ExportStepDefinition(ctx context.Context, id string, w io.Writer) error {
	_, err := a.stream(ctx, "/admin/v1/stepdefs/"+esc(id)+"/export", w)
	return err
}

// FillContentVersion uploads the bytes of version no of item id, which
// awaits them: a File's bytes, or a Folder's tar stream (contentType
// "application/x-tar"). A hash the import carried must match.
func (a *Admin) FillContentVersion(ctx context.Context, id string, no int, body io.Reader, contentType string) (*deploy.ContentVersion, error) {
	r := request{method: http.MethodPut, path: versionPath(id, no) + "/data", body: body, contentType: contentType}
	if s, ok := body.(Sizer); ok {
		r.size = s.Size()
	}
	if r.contentType == "" {
		r.contentType = "application/octet-stream"
	}
	var out deploy.ContentVersion
	if err := a.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
