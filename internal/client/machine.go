package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/windrivers"
)

// Machine is a client of the machine API (HTTPS, bearer session token),
// used by imprint-agent. It is safe for concurrent use.
type Machine struct {
	base       string
	hc         *http.Client
	clientCert bool // presents a client certificate (WithClientCert)

	mu         sync.Mutex
	token      string
	retryDelay *time.Duration
	// ca is the CA the client trusts: the PEM given, or the pinned
	// certificate once a connection has shown it (CACertPEM).
	ca *trustedCA
}

// trustedCA holds the CA certificate (PEM) for CACertPEM.
type trustedCA struct {
	mu  sync.Mutex
	pem []byte
}

func (c *trustedCA) set(p []byte) {
	c.mu.Lock()
	c.pem = p
	c.mu.Unlock()
}

// CACertPEM returns the server's CA certificate (PEM): the one NewMachine
// was given, or for NewMachinePinned the chain's certificate with the
// pinned fingerprint, once a connection has been made (nil before). The
// boot image stages it for the Windows continuation.
func (m *Machine) CACertPEM() []byte {
	m.ca.mu.Lock()
	defer m.ca.mu.Unlock()
	return append([]byte(nil), m.ca.pem...)
}

// MachineOption adjusts a Machine client at construction.
type MachineOption func(*machineOptions) error

type machineOptions struct {
	cert *tls.Certificate
}

// WithClientCert presents cert whenever the server asks for a client
// certificate (the certificate authentication method). It is presented even
// when the server does not name its issuer among the CAs it accepts, so a
// wrong certificate is refused by the server with a clear TLS alert rather
// than silently left out.
func WithClientCert(cert tls.Certificate) MachineOption {
	return func(o *machineOptions) error {
		if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
			return deploy.Errorf(deploy.KindInvalid, "client certificate: needs a certificate and its private key")
		}
		o.cert = &cert
		return nil
	}
}

// NewMachine returns a client of the server at baseURL (https://host:7281)
// that trusts only the CA in caPEM.
func NewMachine(baseURL string, caPEM []byte, opts ...MachineOption) (*Machine, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, deploy.Errorf(deploy.KindInvalid, "CA file holds no PEM certificate")
	}
	m, err := newMachine(baseURL, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, opts)
	if err == nil {
		m.ca.set(append([]byte(nil), caPEM...))
	}
	return m, err
}

// NewMachinePinned returns a client that trusts the server when some
// certificate of the chain it presents has the SHA-256 fingerprint
// caSHA256 (hex, colons allowed) and the leaf verifies up to that
// certificate. The boot image gets the fingerprint on the kernel command
// line and has no CA file.
func NewMachinePinned(baseURL, caSHA256 string, opts ...MachineOption) (*Machine, error) {
	want, err := parseFingerprint(caSHA256)
	if err != nil {
		return nil, err
	}
	// The name to check comes from the URL: the TLS state has no server
	// name when the URL holds an IP address, and the check must not lapse.
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || u.Hostname() == "" {
		return nil, deploy.Errorf(deploy.KindInvalid, "server URL %q has no host", baseURL)
	}
	host := u.Hostname()
	ca := &trustedCA{}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is done by VerifyConnection against the pinned root.
		InsecureSkipVerify: true, //nolint:gosec // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			root, err := verifyPinned(cs, want, host)
			if err == nil {
				ca.set(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}))
			}
			return err
		},
	}
	m, err := newMachine(baseURL, cfg, opts)
	if err == nil {
		m.ca = ca
	}
	return m, err
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
func verifyPinned(cs tls.ConnectionState, want []byte, host string) (*x509.Certificate, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, errors.New("server presented no certificate")
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
		return nil, errors.New("no certificate of the server's chain has the pinned CA fingerprint")
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
		return root, nil
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
		return nil, fmt.Errorf("server certificate does not verify against the pinned CA: %w", err)
	}
	return root, nil
}

func newMachine(baseURL string, cfg *tls.Config, opts []MachineOption) (*Machine, error) {
	base := strings.TrimRight(strings.TrimSpace(baseURL), "/")
	// Never plain HTTP: the passcode and the session token travel on
	// this connection (security.md PC-11).
	if !strings.HasPrefix(strings.ToLower(base), "https://") {
		return nil, deploy.Errorf(deploy.KindInvalid, "server URL %q must start with https://", baseURL)
	}
	var o machineOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.cert != nil {
		cert := o.cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: 15 * time.Second,
		MaxIdleConns:        4,
		DisableCompression:  true, // downloads are hashed and resumed byte for byte
	}
	return &Machine{base: base, hc: &http.Client{Transport: tr}, clientCert: o.cert != nil, ca: &trustedCA{}}, nil
}

// HasClientCert reports whether the client presents a client certificate.
func (m *Machine) HasClientCert() bool { return m.clientCert }

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
		if m.clientCert && isCertAlert(err) {
			return nil, deploy.Wrap(deploy.KindUnauthorized, err,
				fmt.Sprintf("the imprint server at %s refused the client certificate: %v", m.base, err))
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
	// Disks are the machine's fixed disks (devices page inventory).
	Disks []deploy.Disk `json:"disks,omitempty"`
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

// DriverPacks lists the DriverPack versions the session's Inject drivers
// step may choose from, with their Manufacturer and Model (empty when the
// session's task sequence has no Inject drivers step).
func (m *Machine) DriverPacks(ctx context.Context) ([]windrivers.Pack, error) {
	var out []windrivers.Pack
	if err := m.callJSON(ctx, http.MethodGet, "/v1/driverpacks", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
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
	// BytesDone and BytesTotal (progress events) count a download or an
	// image write, so the console can show it.
	BytesDone  int64 `json:"bytesDone,omitempty"`
	BytesTotal int64 `json:"bytesTotal,omitempty"`
	// Downloads (step-end) says where the step's content came from.
	Downloads []deploy.Download `json:"downloads,omitempty"`
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

// isCertAlert reports whether err is a certificate alert the server sent
// ("remote error: tls: bad certificate", "… expired certificate", "… unknown
// certificate authority"): for a client with a certificate, the server
// refused it.
func isCertAlert(err error) bool {
	_, alert, ok := strings.Cut(err.Error(), "remote error: tls: ")
	return ok && strings.Contains(alert, "certificate")
}
