package agent

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/app"
)

// ContentClient is the part of the machine client the fetcher uses.
type ContentClient interface {
	ContentInfo(ctx context.Context, id string, no int) (*client.ContentInfo, error)
	Download(ctx context.Context, id string, no int, dst string, progress client.Progress) (*client.ContentInfo, error)
}

// Fetcher is the engine's content fetcher: it downloads each content
// version once into Dir/<id>/<no> (a Folder's files there, a File as
// Dir/<id>/<no>/<file name>), resuming and verifying through the client.
//
// DeployR's own built-in content items (ids 00000000-0000-0000-0000-…,
// holding its PowerShell scripts) are not shipped by Imprint: the built-in
// steps that reference them are implemented natively, so Fetch returns ""
// for them.
type Fetcher struct {
	Client ContentClient
	Dir    string
	// Progress is told about download progress (may be nil).
	Progress func(ref deploy.Ref, name string, done, total int64)
	// Log receives one line per fetched item (may be nil).
	Log func(format string, args ...any)

	mu    sync.Mutex
	infos map[string]*client.ContentInfo
}

var (
	_ sequence.ContentFetcher = (*Fetcher)(nil)
	_ app.Source              = (*Fetcher)(nil)
)

// IsDeployRBuiltinContent reports whether ref names one of DeployR's
// built-in content items.
func IsDeployRBuiltinContent(ref deploy.Ref) bool {
	return strings.HasPrefix(ref.ID, "00000000-0000-0000-0000-")
}

func (f *Fetcher) info(ctx context.Context, ref deploy.Ref) (*client.ContentInfo, error) {
	key := ref.String()
	f.mu.Lock()
	ci := f.infos[key]
	f.mu.Unlock()
	if ci != nil {
		return ci, nil
	}
	ci, err := f.Client.ContentInfo(ctx, ref.ID, ref.VersionNo)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if f.infos == nil {
		f.infos = make(map[string]*client.ContentInfo)
	}
	f.infos[key] = ci
	f.mu.Unlock()
	return ci, nil
}

// ContentVersion returns the metadata of a content version.
func (f *Fetcher) ContentVersion(ctx context.Context, ref deploy.Ref) (*deploy.ContentVersion, error) {
	ci, err := f.info(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &ci.Version, nil
}

// Fetch downloads (or finds in the cache) a content version and returns
// its local path.
func (f *Fetcher) Fetch(ctx context.Context, ref deploy.Ref) (string, error) {
	if IsDeployRBuiltinContent(ref) {
		if f.Log != nil {
			f.Log("Content %s is DeployR built-in content; Imprint's built-in steps do not need it", ref)
		}
		return "", nil
	}
	ci, err := f.info(ctx, ref)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(f.Dir, content.SafeFilename(ref.ID), strconv.Itoa(ref.VersionNo))
	dst := dir
	if ci.Item.Type != deploy.ContentFolder {
		name := content.SafeFilename(deploy.Str(ci.Version.RelativePath))
		if name == "" {
			name = content.SafeFilename(ci.Item.Name)
		}
		if name == "" {
			name = "content"
		}
		dst = filepath.Join(dir, name)
	}
	var progress client.Progress
	if f.Progress != nil {
		progress = func(done, total int64) { f.Progress(ref, ci.Item.Name, done, total) }
	}
	if _, err := f.Client.Download(ctx, ref.ID, ref.VersionNo, dst, progress); err != nil {
		return "", err
	}
	if f.Log != nil {
		f.Log("Content %s (%s) is at %s", ref, ci.Item.Name, dst)
	}
	return dst, nil
}
