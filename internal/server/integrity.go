package server

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// Stored content is checked against its hash whenever it is read whole:
// a full download hashes the bytes as they stream out and aborts the
// connection before the last chunk if they do not match; a folder's tar
// stream does the same per file. A range cannot be checked on its own, so
// serving one schedules a check of the whole blob in the background (one
// at a time, skipped if the blob was found whole since it last changed);
// the agent checks the full hash of what it assembled too. A blob found
// corrupt is audited (content.corrupt), logged, and set aside so it is
// never served again; uploading the right bytes repairs every version
// that names it. `imprint content verify` checks the whole store.

// blobChecks remembers which blobs were found whole and runs the
// background checks.
type blobChecks struct {
	ctx    context.Context // ends when the server closes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	whole   map[string]time.Time // hash → modification time when last found whole
	running bool
}

func newBlobChecks() *blobChecks {
	ctx, cancel := context.WithCancel(context.Background())
	return &blobChecks{ctx: ctx, cancel: cancel, whole: map[string]time.Time{}}
}

func (c *blobChecks) close() {
	c.cancel()
	c.wg.Wait()
}

func (c *blobChecks) markWhole(h string, mtime time.Time) {
	c.mu.Lock()
	c.whole[h] = mtime
	c.mu.Unlock()
}

// serveBlob sends a blob with content.ServeBlob and acts on what it found:
// a corrupt blob is reported and the response aborted; a range, which
// could not be checked, schedules a check of the whole blob.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, f content.Object, h, name string) {
	w, done := s.metrics.download(w)
	defer done()
	full, err := content.ServeBlob(w, r, f, h, name)
	if ce, ok := content.AsCorrupt(err); ok {
		s.blobCorrupt(r.Context(), ce, "download")
		panic(http.ErrAbortHandler) // the client sees a broken transfer, not a clean answer
	}
	if err != nil {
		s.log.Error("serve blob", "sha256", h, "err", err)
		panic(http.ErrAbortHandler)
	}
	mtime := f.ModTime()
	if full {
		s.checks.markWhole(h, mtime)
		return
	}
	if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
		s.checkLater(h, mtime)
	}
}

// checkLater checks the whole blob h in the background unless it was
// found whole since mtime or another check is running (the client's next
// range will ask again).
func (s *Server) checkLater(h string, mtime time.Time) {
	c := s.checks
	c.mu.Lock()
	if (!mtime.IsZero() && c.whole[h].Equal(mtime)) || c.running || c.ctx.Err() != nil {
		c.mu.Unlock()
		return
	}
	c.running = true
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		err := s.blobs.Verify(c.ctx, h)
		c.mu.Lock()
		c.running = false
		if err == nil {
			c.whole[h] = mtime
		}
		c.mu.Unlock()
		if ce, ok := content.AsCorrupt(err); ok {
			s.blobCorrupt(c.ctx, ce, "range check")
		} else if err != nil && c.ctx.Err() == nil && !deploy.IsNotFound(err) {
			s.log.Warn("check blob", "sha256", h, "err", err)
		}
	}()
}

// blobCorrupt reports a blob that failed its hash check — one audit
// event and one log line, naming the versions that use it — and sets it
// aside, so it happens once per corruption, not once per request.
func (s *Server) blobCorrupt(ctx context.Context, ce *content.CorruptError, via string) {
	ctx = context.WithoutCancel(ctx)
	users, err := s.blobUsers(ctx)
	if err != nil {
		s.log.Warn("list content versions", "err", err)
	}
	var names []string
	for _, u := range users[ce.SHA256] {
		names = append(names, u.String())
	}
	s.log.Error("stored content is corrupt: set aside; upload the file again to repair it",
		"sha256", ce.SHA256, "err", ce.Error(), "via", via, "versions", strings.Join(names, ", "))
	s.record(ctx, &deploy.AuditEvent{Action: "content.corrupt", Outcome: auth.OutcomeFailure, Details: map[string]string{
		"sha256": ce.SHA256, "detail": ce.Error(), "via": via, "versions": strings.Join(names, ", ")}})
	if err := s.blobs.SetAside(ctx, ce.SHA256); err != nil {
		s.log.Error("set aside corrupt blob", "sha256", ce.SHA256, "err", err)
	}
}

// blobUsers maps every blob a version references to its users.
func (s *Server) blobUsers(ctx context.Context) (map[string][]wire.BlobUse, error) {
	items, err := s.store.ContentItems(ctx)
	if err != nil {
		return nil, err
	}
	m := map[string][]wire.BlobUse{}
	for _, it := range items {
		for _, v := range it.Versions {
			u := wire.BlobUse{ItemID: it.ID, ItemName: it.Name, VersionNo: v.VersionNo}
			switch {
			case it.Type == deploy.ContentFile && v.SHA256 != "":
				m[v.SHA256] = append(m[v.SHA256], u)
			case it.Type == deploy.ContentFolder && v.Manifest != nil:
				for _, f := range v.Manifest.Files {
					fu := u
					fu.Path = f.Path
					m[f.SHA256] = append(m[f.SHA256], fu)
				}
			}
		}
	}
	return m, nil
}

// adminVerifyContent reads every stored blob and compares it with its
// name, and checks that every blob a version names is there.
func (s *Server) adminVerifyContent(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	users, err := s.blobUsers(ctx)
	if err != nil {
		return err
	}
	rep := wire.ScrubReport{Problems: []wire.BlobProblem{}}
	seen := map[string]bool{}
	var corrupt []*content.CorruptError
	err = s.blobs.Walk(ctx, func(b content.BlobInfo) error {
		seen[b.SHA256] = true
		err := s.blobs.Verify(ctx, b.SHA256)
		if deploy.IsNotFound(err) {
			return nil // removed meanwhile
		}
		rep.Blobs++
		rep.Bytes += b.Size
		if ce, ok := content.AsCorrupt(err); ok {
			corrupt = append(corrupt, ce)
			return nil
		}
		if err == nil {
			s.checks.markWhole(b.SHA256, b.ModTime)
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, ce := range corrupt {
		s.blobCorrupt(ctx, ce, "verify")
		rep.Problems = append(rep.Problems, wire.BlobProblem{SHA256: ce.SHA256, Problem: "corrupt",
			Detail: ce.Error() + "; set aside: upload the file again to repair it", UsedBy: nonNil(users[ce.SHA256])})
	}
	// Versions deleted while the store was read took their blobs along:
	// only what is still referenced now can be missing.
	if users, err = s.blobUsers(ctx); err != nil {
		return err
	}
	for h, u := range users {
		if seen[h] {
			continue
		}
		if _, err := s.blobs.Stat(ctx, h); err == nil {
			continue // stored while the store was read
		}
		p := wire.BlobProblem{SHA256: h, Problem: "missing", Detail: "no such blob in the store", UsedBy: u}
		if s.blobs.SetAsideBlob(ctx, h) {
			p.Problem, p.Detail = "corrupt", "found corrupt earlier and set aside: upload the file again to repair it"
		}
		rep.Problems = append(rep.Problems, p)
	}
	sort.Slice(rep.Problems, func(i, j int) bool { return rep.Problems[i].SHA256 < rep.Problems[j].SHA256 })
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func nonNil(u []wire.BlobUse) []wire.BlobUse {
	if u == nil {
		return []wire.BlobUse{}
	}
	return u
}

// damagedBlob explains a version whose blob cannot be opened because it
// was set aside as corrupt; other errors pass through.
func (s *Server) damagedBlob(ctx context.Context, err error, item *deploy.ContentItem, v *deploy.ContentVersion, h string) error {
	if deploy.IsNotFound(err) && s.blobs.SetAsideBlob(ctx, h) {
		return deploy.Errorf(deploy.KindInternal, "content %s version %d is damaged: its stored bytes failed their hash check "+
			"and were set aside; upload the file again (imprint content add-version) to repair it", item.ID, v.VersionNo)
	}
	return err
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
