package client

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// Machine is a client of the machine API (HTTPS, bearer session token),
// used by imprint-agent. It is safe for concurrent use.
type Machine struct {
	base string
	hc   *http.Client

	mu         sync.Mutex
	token      string
	retryDelay *time.Duration
}

// NewMachine returns a client of the server at baseURL (https://host:7281)
// that trusts only the CA in caPEM.
func NewMachine(baseURL string, caPEM []byte) (*Machine, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, deploy.Errorf(deploy.KindInvalid, "CA file holds no PEM certificate")
	}
	return newMachine(baseURL, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
}

// NewMachinePinned returns a client that trusts the server when some
// certificate of the chain it presents has the SHA-256 fingerprint
// caSHA256 (hex, colons allowed) and the leaf verifies up to that
// certificate. The boot image gets the fingerprint on the kernel command
// line and has no CA file.
func NewMachinePinned(baseURL, caSHA256 string) (*Machine, error) {
	want, err := parseFingerprint(caSHA256)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is done by VerifyConnection against the pinned root.
		InsecureSkipVerify: true, //nolint:gosec // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs, want)
		},
	}
	return newMachine(baseURL, cfg)
}

func parseFingerprint(s string) ([]byte, error) {
	h := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, deploy.Errorf(deploy.KindInvalid, "CA fingerprint %q is not a SHA-256 in hex (64 digits)", s)
	}
	return b, nil
}

// verifyPinned checks the chain against the pinned certificate.
func verifyPinned(cs tls.ConnectionState, want []byte) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server presented no certificate")
	}
	var root *x509.Certificate
	for _, c := range cs.PeerCertificates {
		sum := sha256.Sum256(c.Raw)
		if bytes.Equal(sum[:], want) {
			root = c
			break
		}
	}
	if root == nil {
		return errors.New("no certificate of the server's chain has the pinned CA fingerprint")
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if leaf.Equal(root) {
		// A self-signed server certificate pinned directly.
		return nil
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: cs.ServerName}); err != nil {
		return fmt.Errorf("server certificate does not verify against the pinned CA: %w", err)
	}
	return nil
}

func newMachine(baseURL string, cfg *tls.Config) (*Machine, error) {
	base := strings.TrimRight(strings.TrimSpace(baseURL), "/")
	if !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://") {
		return nil, deploy.Errorf(deploy.KindInvalid, "server URL %q must start with https://", baseURL)
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: 15 * time.Second,
		MaxIdleConns:        4,
		DisableCompression:  true, // downloads are hashed and resumed byte for byte
	}
	return &Machine{base: base, hc: &http.Client{Transport: tr}}, nil
}

// BaseURL is the server URL the client talks to.
func (m *Machine) BaseURL() string { return m.base }

// SetToken sets the bearer token sent on every call.
func (m *Machine) SetToken(tok string) {
	m.mu.Lock()
	m.token = tok
	m.mu.Unlock()
}

func (m *Machine) bearer() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.token
}

// RetryError is an error answer that carried Retry-After (429, 503).
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter returns the wait an error answer asked for.
func RetryAfter(err error) (time.Duration, bool) {
	var re *RetryError
	if errors.As(err, &re) {
		return re.After, true
	}
	return 0, false
}

// do sends req with the token and returns a 2xx answer; other statuses
// become *deploy.Error (wrapped in *RetryError when Retry-After is set).
func (m *Machine) do(req *http.Request) (*http.Response, error) {
	if tok := m.bearer(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, req.Context().Err())
		}
		return nil, deploy.Wrap(deploy.KindUnavailable, err,
			fmt.Sprintf("cannot reach the imprint server at %s", m.base))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	perr := parseError(resp)
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && n >= 0 {
			return nil, &RetryError{Err: perr, After: time.Duration(n) * time.Second}
		}
		if t, err := http.ParseTime(ra); err == nil {
			return nil, &RetryError{Err: perr, After: time.Until(t)}
		}
	}
	return nil, perr
}

// callJSON sends in (when non-nil) as JSON and decodes the answer into out
// (when non-nil).
func (m *Machine) callJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Time returns the server's clock.
func (m *Machine) Time(ctx context.Context) (time.Time, error) {
	var out struct {
		Unix int64 `json:"unix"`
	}
	if err := m.callJSON(ctx, http.MethodGet, "/v1/time", nil, &out); err != nil {
		return time.Time{}, err
	}
	return time.Unix(out.Unix, 0), nil
}

// EntraSettings is what the agent needs for the device-code flow.
type EntraSettings struct {
	Authority string `json:"authority"`
	TenantID  string `json:"tenantId"`
	ClientID  string `json:"clientId"`
	Scope     string `json:"scope"`
}

// AuthMethods is the answer of GET /v1/auth/methods.
type AuthMethods struct {
	Methods          []string       `json:"methods"`
	BootImageMethods []string       `json:"bootImageMethods"`
	Entra            *EntraSettings `json:"entra,omitempty"`
	Hint             string         `json:"hint,omitempty"`
}

// AuthMethods returns the authentication methods the server accepts.
func (m *Machine) AuthMethods(ctx context.Context) (*AuthMethods, error) {
	var out AuthMethods
	if err := m.callJSON(ctx, http.MethodGet, "/v1/auth/methods", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeviceInfo identifies the machine in a token request.
type DeviceInfo struct {
	UUID         string   `json:"uuid,omitempty"`
	MACs         []string `json:"macs,omitempty"`
	SerialNumber string   `json:"serialNumber,omitempty"`
	Make         string   `json:"make,omitempty"`
	Model        string   `json:"model,omitempty"`
	Name         string   `json:"name,omitempty"`
}

// TokenRequest is the body of POST /v1/auth/token.
type TokenRequest struct {
	Method      string     `json:"method"`
	Passcode    string     `json:"passcode,omitempty"`
	AccessToken string     `json:"accessToken,omitempty"`
	Device      DeviceInfo `json:"device"`
}

// TokenAnswer is a new session.
type TokenAnswer struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	SessionID string    `json:"sessionId"`
}

// Token authenticates and, on success, uses the returned token for every
// later call. A 429 answer is a *RetryError (see RetryAfter).
func (m *Machine) Token(ctx context.Context, req TokenRequest) (*TokenAnswer, error) {
	var out TokenAnswer
	if err := m.callJSON(ctx, http.MethodPost, "/v1/auth/token", req, &out); err != nil {
		return nil, err
	}
	if out.Token == "" {
		return nil, deploy.Errorf(deploy.KindInternal, "server answered the token request without a token")
	}
	m.SetToken(out.Token)
	return &out, nil
}

// TSSummary is one task sequence the session may run.
type TSSummary struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	VersionNo   int    `json:"versionNo"`
	Status      string `json:"status"`
}

// TaskSequences lists the sequences the session may run.
func (m *Machine) TaskSequences(ctx context.Context) ([]TSSummary, error) {
	var out []TSSummary
	if err := m.callJSON(ctx, http.MethodGet, "/v1/tasksequences", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// TaskSequenceVersion fetches one version (and binds the session to it).
func (m *Machine) TaskSequenceVersion(ctx context.Context, id string, no int) (*deploy.TSVersion, error) {
	var ts deploy.TaskSequence
	if err := m.callJSON(ctx, http.MethodGet, fmt.Sprintf("/v1/tasksequences/%s/versions/%d", esc(id), no), nil, &ts); err != nil {
		return nil, err
	}
	v, ok := ts.Version(no)
	if !ok {
		return nil, deploy.Errorf(deploy.KindNotFound, "server answered task sequence %s without version %d", id, no)
	}
	if v.TaskSequenceID == "" {
		v.TaskSequenceID = ts.ID
	}
	return v, nil
}

// StepDefinition fetches a step definition.
func (m *Machine) StepDefinition(ctx context.Context, id string) (*deploy.StepDefinition, error) {
	var out deploy.StepDefinition
	if err := m.callJSON(ctx, http.MethodGet, "/v1/stepdefs/"+esc(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ContentInfo is the answer of GET /v1/content/{id}/{no}.
type ContentInfo struct {
	Item    deploy.ContentItem    `json:"item"`
	Version deploy.ContentVersion `json:"version"`
}

// ContentInfo fetches a content item version's metadata.
func (m *Machine) ContentInfo(ctx context.Context, id string, no int) (*ContentInfo, error) {
	var out ContentInfo
	if err := m.callJSON(ctx, http.MethodGet, fmt.Sprintf("/v1/content/%s/%d", esc(id), no), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateRunRequest is the body of POST /v1/runs.
type CreateRunRequest struct {
	TaskSequenceID string     `json:"taskSequenceId"`
	VersionNo      int        `json:"versionNo"`
	Device         DeviceInfo `json:"device"`
}

// CreateRun starts the server's record of a run.
func (m *Machine) CreateRun(ctx context.Context, req CreateRunRequest) (*deploy.Run, error) {
	var out deploy.Run
	if err := m.callJSON(ctx, http.MethodPost, "/v1/runs", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AgentEvent is one report of the agent (see docs/api.md).
type AgentEvent struct {
	Type            string    `json:"type"`
	Time            time.Time `json:"time"`
	StepID          string    `json:"stepId,omitempty"`
	Path            string    `json:"path,omitempty"`
	Name            string    `json:"name,omitempty"`
	Outcome         string    `json:"outcome,omitempty"`
	ExitCode        *int      `json:"exitCode,omitempty"`
	Message         string    `json:"message,omitempty"`
	OutputTail      string    `json:"outputTail,omitempty"`
	DurationSeconds float64   `json:"durationSeconds,omitempty"`
	State           string    `json:"state,omitempty"`
}

// SendEvents posts a batch of events of run runID.
func (m *Machine) SendEvents(ctx context.Context, runID string, evs []AgentEvent) error {
	return m.callJSON(ctx, http.MethodPost, "/v1/runs/"+esc(runID)+"/events", evs, nil)
}

// UploadLogs posts a .tar.gz of the agent's log folder.
func (m *Machine) UploadLogs(ctx context.Context, runID string, tgz io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.base+"/v1/runs/"+esc(runID)+"/logs", tgz)
	if err != nil {
		return fmt.Errorf("upload logs: %w", err)
	}
	req.Header.Set("Content-Type", "application/gzip")
	resp, err := m.do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// ServerScriptRequest is the body of POST /v1/runs/{id}/server-script.
type ServerScriptRequest struct {
	ScriptName     string            `json:"scriptName"`
	Variables      map[string]string `json:"variables"`
	TimeoutSeconds int               `json:"timeoutSeconds,omitempty"`
}

// ServerScriptResult is what a server-side script returned.
type ServerScriptResult struct {
	Variables map[string]string `json:"variables"`
	Output    string            `json:"output"`
	ExitCode  int               `json:"exitCode"`
}

// ServerScript runs a script of the server's scripts folder for run runID.
func (m *Machine) ServerScript(ctx context.Context, runID string, req ServerScriptRequest) (*ServerScriptResult, error) {
	var out ServerScriptResult
	if err := m.callJSON(ctx, http.MethodPost, "/v1/runs/"+esc(runID)+"/server-script", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

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
