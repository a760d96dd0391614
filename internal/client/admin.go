package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// adminBase is the base URL of admin requests; the host is a placeholder,
// since the transport always dials the socket.
const adminBase = "http://imprint"

// Admin is a client of the admin API: over the server's Unix socket
// (NewAdmin) or over HTTPS with an admin token (NewRemoteAdmin).
// It is safe for concurrent use.
type Admin struct {
	socket string // empty for a remote client
	base   string
	token  string // admin token of a remote client
	hc     *http.Client
}

// NewAdmin returns a client that dials socketPath for every request.
func NewAdmin(socketPath string) *Admin {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns:       4,
		DisableCompression: true, // downloads are hashed and resumed byte for byte
	}
	return &Admin{socket: socketPath, base: adminBase, hc: &http.Client{Transport: tr}}
}

// NewRemoteAdmin returns a client of the admin API of the server at
// baseURL (https://host:7281) that sends token with every request. With
// caPEM it trusts only that CA (the server's DIR/tls/ca.crt); without, the
// system's roots (a server behind a publicly trusted proxy).
func NewRemoteAdmin(baseURL, token string, caPEM []byte) (*Admin, error) {
	base := strings.TrimRight(strings.TrimSpace(baseURL), "/")
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, deploy.Errorf(deploy.KindInvalid, "server URL %q must be https://HOST[:PORT]", baseURL)
	}
	if strings.TrimSpace(token) == "" {
		return nil, deploy.Errorf(deploy.KindInvalid, "remote administration needs an admin token")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, deploy.Errorf(deploy.KindInvalid, "CA file holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: 15 * time.Second,
		MaxIdleConns:        4,
		DisableCompression:  true,
	}
	return &Admin{base: base, token: strings.TrimSpace(token), hc: &http.Client{Transport: tr}}, nil
}

// SocketPath is the socket the client dials; empty for a remote client.
func (a *Admin) SocketPath() string { return a.socket }

// where names the server for messages: the socket or the URL.
func (a *Admin) where() string {
	if a.socket != "" {
		return a.socket
	}
	return a.base
}

// request describes one API call.
type request struct {
	method      string
	path        string // below the base URL, already escaped
	query       url.Values
	body        io.Reader
	contentType string
	size        int64 // body length when known and positive, else 0
}

// jsonBody encodes v for a request body.
func jsonBody(v any) (io.Reader, error) {
	b, err := deploy.EncodeJSON(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return bytes.NewReader(b), nil
}

// send performs r and returns the response of a 2xx status; any other
// status becomes the *deploy.Error the body describes. The caller closes
// the response body.
func (a *Admin) send(ctx context.Context, r request) (*http.Response, error) {
	u := a.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	body := r.body
	if body == nil {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if r.size > 0 && r.body != nil {
		req.ContentLength = r.size
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, a.transportError(ctx, r, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, parseError(resp)
}

// transportError turns a failed round trip into a clear error; a socket
// nobody listens on gets the hint every operator needs first.
func (a *Admin) transportError(ctx context.Context, r request, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.path, ctx.Err())
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return deploy.Wrap(deploy.KindUnavailable, cv.Err, fmt.Sprintf(
			"cannot trust the server at %s: its certificate does not verify; pass the server's CA certificate (DIR/tls/ca.crt on the server) with --ca", a.where()))
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		hint := "is `imprint server` running with this --data directory?"
		if a.socket == "" {
			hint = "is the server running and the URL right?"
		}
		return deploy.Wrap(deploy.KindUnavailable, dialReason(op.Err), fmt.Sprintf(
			"cannot reach the imprint server at %s: %s", a.where(), hint))
	}
	return fmt.Errorf("%s %s: %w", r.method, r.path, err)
}

// dialReason keeps the useful part of a dial error (no such file, refused,
// permission denied) without repeating the socket path.
func dialReason(err error) error {
	for _, e := range []syscall.Errno{syscall.ENOENT, syscall.ECONNREFUSED, syscall.EACCES} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// parseError maps an error answer back to a *deploy.Error: the Kind from the
// code (or, failing that, the status) and the server's message and fields.
func parseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb wire.ErrorBody
	if err := json.Unmarshal(b, &eb); err == nil && eb.Error.Message != "" {
		kind := eb.Error.Code
		if !knownKind(kind) {
			kind = kindOfStatus(resp.StatusCode)
		}
		return &deploy.Error{Kind: kind, Message: eb.Error.Message, Fields: eb.Error.Fields}
	}
	text := strings.TrimSpace(string(b))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	msg := fmt.Sprintf("server answered %s", resp.Status)
	if text != "" {
		msg += ": " + text
	}
	return &deploy.Error{Kind: kindOfStatus(resp.StatusCode), Message: msg}
}

func knownKind(k deploy.Kind) bool {
	switch k {
	case deploy.KindInvalid, deploy.KindUnauthorized, deploy.KindForbidden, deploy.KindNotFound,
		deploy.KindConflict, deploy.KindTooLarge, deploy.KindThrottled, deploy.KindUnavailable,
		deploy.KindInternal:
		return true
	}
	return false
}

// kindOfStatus is the inverse of the server's Kind → status mapping.
func kindOfStatus(status int) deploy.Kind {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return deploy.KindInvalid
	case http.StatusUnauthorized:
		return deploy.KindUnauthorized
	case http.StatusForbidden:
		return deploy.KindForbidden
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return deploy.KindNotFound
	case http.StatusConflict:
		return deploy.KindConflict
	case http.StatusRequestEntityTooLarge:
		return deploy.KindTooLarge
	case http.StatusTooManyRequests:
		return deploy.KindThrottled
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return deploy.KindUnavailable
	}
	if status >= 400 && status < 500 {
		return deploy.KindInvalid
	}
	return deploy.KindInternal
}

// call performs r and decodes a JSON answer into out (when non-nil).
func (a *Admin) call(ctx context.Context, r request, out any) error {
	resp, err := a.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", r.method, r.path, err)
	}
	return nil
}

// getJSON, postJSON and friends are the common shapes of call.
func (a *Admin) get(ctx context.Context, path string, out any) error {
	return a.call(ctx, request{method: http.MethodGet, path: path}, out)
}

func (a *Admin) del(ctx context.Context, path string) error {
	return a.call(ctx, request{method: http.MethodDelete, path: path}, nil)
}

func (a *Admin) sendJSON(ctx context.Context, method, path string, in, out any) error {
	body, err := jsonBody(in)
	if err != nil {
		return err
	}
	return a.call(ctx, request{method: method, path: path, body: body, contentType: "application/json"}, out)
}

// stream copies a 2xx answer's body to w.
func (a *Admin) stream(ctx context.Context, path string, w io.Writer) (int64, error) {
	resp, err := a.send(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("GET %s: got %d of %d bytes", path, n, resp.ContentLength)
	}
	return n, nil
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }
