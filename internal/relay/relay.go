// Package relay is `imprint relay`: the same binary at a branch office. It
// serves the boot port (and PXE with --pxe) and the machine API on its own
// HTTPS port with its own CA, forwards every machine call to the central
// server, and keeps File content in a cache of blobs by SHA-256, fetched
// from the central server once and checked against its hash. When the
// uplink drops, machines that already started keep their content (the
// cache, and the content metadata their session was shown before) and
// their agents keep their events until the uplink is back.
package relay

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/imprint-osd/imprint/internal/boot"
	"github.com/imprint-osd/imprint/internal/boot/pxe"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/tlsca"
)

// Config is a relay's configuration.
type Config struct {
	// Upstream is the central server's HTTPS API, e.g. https://imprint:7281.
	Upstream string
	// UpstreamCA is the central server's CA certificate (PEM).
	UpstreamCA []byte
	// UpstreamBoot is the central server's boot port; empty means
	// Upstream's host on port 7282 over plain HTTP.
	UpstreamBoot string
	// DataDir holds the relay's TLS material and caches.
	DataDir string
	// Listen and BootListen are the relay's HTTPS and boot ports.
	Listen, BootListen string
	// PublicURL and BootURL are how machines reach the relay; empty means
	// the bound addresses.
	PublicURL, BootURL string
	// CertHosts are extra names for the relay's certificate.
	CertHosts []string
	// PXE runs proxyDHCP and TFTP on PXEInterface, answering with PXEServerIP.
	PXE                       bool
	PXEInterface, PXEServerIP string
	Log                       *slog.Logger
}

// Relay is a running branch relay.
type Relay struct {
	cfg      Config
	log      *slog.Logger
	tls      *tlsca.Material
	upstream *url.URL
	bootUp   *url.URL
	hc       *http.Client
	proxy    *httputil.ReverseProxy
	cache    *Cache
	bootH    *boot.Handler

	mu    sync.Mutex
	infos map[string]*infoEntry // by content id:no

	apiLn, bootLn net.Listener
}

// infoEntry is a content version's metadata as the central server gave
// it, with the sessions it was given to (hashes of their tokens), so that
// with the uplink down a session gets only what it was shown before.
type infoEntry struct {
	body     []byte
	sha256   string
	size     int64
	file     bool
	manifest *deploy.Manifest // a Folder version's files
	tokens   map[string]bool
}

// Open prepares the relay's data directory and TLS material, binds its
// ports and builds its handlers.
func Open(cfg Config) (_ *Relay, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	up, err := url.Parse(cfg.Upstream)
	if err != nil || up.Scheme != "https" || up.Host == "" {
		return nil, fmt.Errorf("relay: --upstream must be the central server's https URL, got %q", cfg.Upstream)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.UpstreamCA) {
		return nil, fmt.Errorf("relay: --ca holds no PEM certificate")
	}
	if cfg.UpstreamBoot == "" {
		cfg.UpstreamBoot = "http://" + net.JoinHostPort(up.Hostname(), "7282")
	}
	bootUp, err := url.Parse(cfg.UpstreamBoot)
	if err != nil || bootUp.Host == "" {
		return nil, fmt.Errorf("relay: upstream boot URL %q is not a URL", cfg.UpstreamBoot)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	r := &Relay{cfg: cfg, log: cfg.Log, upstream: up, bootUp: bootUp,
		cache: &Cache{Dir: filepath.Join(cfg.DataDir, "content")}, infos: map[string]*infoEntry{}}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	tr := &http.Transport{
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
	r.hc = &http.Client{Transport: tr}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			r.log.Warn("upstream unreachable", "method", req.Method, "path", req.URL.Path, "err", err)
			writeError(w, http.StatusBadGateway, "unavailable", "the central server cannot be reached from this relay: "+err.Error())
		},
	}
	if r.apiLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("relay: listen %s: %w", cfg.Listen, err)
	}
	if r.bootLn, err = net.Listen("tcp", cfg.BootListen); err != nil {
		return nil, fmt.Errorf("relay: boot-listen %s: %w", cfg.BootListen, err)
	}
	if r.cfg.PublicURL == "" {
		r.cfg.PublicURL = "https://" + r.apiLn.Addr().String()
	}
	if r.cfg.BootURL == "" {
		r.cfg.BootURL = "http://" + r.bootLn.Addr().String()
	}
	hosts := append([]string{"localhost", "127.0.0.1"}, cfg.CertHosts...)
	if h, _, err := net.SplitHostPort(r.apiLn.Addr().String()); err == nil {
		hosts = append(hosts, h)
	}
	if r.tls, err = tlsca.LoadOrCreate(filepath.Join(cfg.DataDir, "tls"), hosts, time.Now()); err != nil {
		return nil, err
	}
	bcfg := boot.DefaultConfig()
	bcfg.PublicURL, bcfg.BootURL, bcfg.CAFingerprint, bcfg.Menu = r.cfg.PublicURL, r.cfg.BootURL, r.tls.Fingerprint(), false
	files := &bootFiles{dir: filepath.Join(cfg.DataDir, "boot"), up: bootUp, hc: &http.Client{Timeout: 5 * time.Minute}, log: r.log}
	machines := &upstreamMachines{base: bootUp, hc: &http.Client{}, log: r.log.With("component", "boot")}
	if r.bootH, err = boot.NewHandler(bcfg, files, machines, r.log.With("component", "boot")); err != nil {
		return nil, err
	}
	return r, nil
}

// APIAddr and BootAddr are the bound ports.
func (r *Relay) APIAddr() net.Addr  { return r.apiLn.Addr() }
func (r *Relay) BootAddr() net.Addr { return r.bootLn.Addr() }

// CAFingerprint is the hex SHA-256 of the relay's CA, which machines behind
// it pin.
func (r *Relay) CAFingerprint() string { return r.tls.Fingerprint() }

// CACertPath is the relay's CA certificate file.
func (r *Relay) CACertPath() string { return filepath.Join(r.cfg.DataDir, "tls", "ca.crt") }

func (r *Relay) close() {
	for _, ln := range []net.Listener{r.apiLn, r.bootLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// Serve runs the relay until ctx ends.
func (r *Relay) Serve(ctx context.Context) error {
	defer r.close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/content/{id}/{no}", r.contentInfo)
	mux.HandleFunc("GET /v1/content/{id}/{no}/data", r.contentData)
	mux.Handle("/v1/", r.proxy)
	mux.Handle("/healthz", r.proxy)
	api := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{r.tls.Certificate}, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"}}}
	bootMux := http.NewServeMux()
	bootMux.Handle("/", r.bootH)
	bootMux.HandleFunc("GET /ca.crt", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(r.tls.CAPEM)
	})
	bootSrv := &http.Server{Handler: bootMux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	g, gctx := errgroup.WithContext(ctx)
	if r.cfg.PXE {
		if err := r.startPXE(gctx, g); err != nil {
			return err
		}
	}
	g.Go(func() error {
		if err := api.ServeTLS(r.apiLn, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("relay api: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := bootSrv.Serve(r.bootLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("relay boot: %w", err)
		}
		return nil
	})
	r.log.Info("imprint relay started", "api", r.cfg.PublicURL, "boot", r.cfg.BootURL, "upstream", r.upstream.String(),
		"ca", r.CACertPath(), "ca_sha256", r.CAFingerprint())
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		api.Shutdown(sctx)
		bootSrv.Shutdown(sctx)
		return nil
	})
	return g.Wait()
}

func (r *Relay) startPXE(ctx context.Context, g *errgroup.Group) error {
	u, err := url.Parse(r.cfg.BootURL)
	if err != nil {
		return fmt.Errorf("relay pxe: %w", err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return fmt.Errorf("relay pxe: boot URL %q has no port", r.cfg.BootURL)
	}
	cfg := pxe.Config{Interface: r.cfg.PXEInterface, BootPort: port, IPXEDir: boot.DefaultConfig().IPXEDir,
		Log: r.log.With("component", "pxe"), Open: r.bootH.TFTPOpen,
		// The signed chain when the central server has one.
		SecureBoot: func() bool {
			rc, _, err := r.bootH.TFTPOpen(ctx, "", boot.ShimFile)
			if err != nil {
				return false
			}
			rc.Close()
			return true
		}}
	if r.cfg.PXEServerIP != "" {
		cfg.ServerIP = net.ParseIP(r.cfg.PXEServerIP)
	}
	svc, err := pxe.Listen(cfg)
	if err != nil {
		return err
	}
	g.Go(func() error { return svc.Serve(ctx) })
	return nil
}

func tokenKey(req *http.Request) string {
	sum := sha256.Sum256([]byte(req.Header.Get("Authorization")))
	return hex.EncodeToString(sum[:])
}

// info returns a content version's metadata: from the central server, or
// — when it cannot be reached — what it gave this same session before.
func (r *Relay) info(req *http.Request) (*infoEntry, int, error) {
	id, no := strings.ToLower(req.PathValue("id")), req.PathValue("no")
	key := id + ":" + no
	out, err := http.NewRequestWithContext(req.Context(), http.MethodGet, r.upstream.JoinPath("v1", "content", id, no).String(), nil)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	out.Header.Set("Authorization", req.Header.Get("Authorization"))
	out.Header.Set("X-Forwarded-For", clientHost(req))
	resp, err := r.hc.Do(out)
	if err != nil {
		r.mu.Lock()
		e := r.infos[key]
		ok := e != nil && e.tokens[tokenKey(req)]
		r.mu.Unlock()
		if ok {
			r.log.Info("uplink down: content metadata from the relay's memory", "content", key)
			return e, http.StatusOK, nil
		}
		return nil, http.StatusBadGateway, fmt.Errorf("the central server cannot be reached from this relay: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, http.StatusBadGateway, err
	}
	if resp.StatusCode != http.StatusOK {
		return &infoEntry{body: body}, resp.StatusCode, nil
	}
	var doc struct {
		Item    deploy.ContentItem    `json:"item"`
		Version deploy.ContentVersion `json:"version"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, http.StatusBadGateway, fmt.Errorf("central server's content metadata: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.infos[key]
	if e == nil || e.sha256 != strings.ToLower(doc.Version.SHA256) {
		e = &infoEntry{tokens: map[string]bool{}}
		r.infos[key] = e
	}
	e.body, e.sha256, e.size, e.file = body, strings.ToLower(doc.Version.SHA256), doc.Version.ContentSize, doc.Item.Type == deploy.ContentFile
	e.manifest = nil
	if doc.Item.Type == deploy.ContentFolder {
		e.manifest = doc.Version.Manifest
	}
	e.tokens[tokenKey(req)] = true
	return e, http.StatusOK, nil
}

func (r *Relay) contentInfo(w http.ResponseWriter, req *http.Request) {
	e, status, err := r.info(req)
	if err != nil {
		writeError(w, status, "unavailable", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(e.body)
}

// contentData serves a File version from the cache (fetching a miss from
// the central server once, for every machine asking), with Range and the
// SHA-256 as ETag like the central server; anything else is forwarded.
func (r *Relay) contentData(w http.ResponseWriter, req *http.Request) {
	e, status, err := r.info(req)
	if err != nil {
		writeError(w, status, "unavailable", err.Error())
		return
	}
	if status != http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(e.body)
		return
	}
	if e.manifest != nil {
		r.folderData(w, req, e)
		return
	}
	if !e.file || len(e.sha256) != 64 || e.size < 0 {
		r.proxy.ServeHTTP(w, req)
		return
	}
	off, end, ok := rangeStart(req, e)
	if !ok {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(e.size, 10))
		writeError(w, http.StatusRequestedRangeNotSatisfiable, "invalid", "range not satisfiable")
		return
	}
	src := r.upstream.JoinPath("v1", "content", strings.ToLower(req.PathValue("id")), req.PathValue("no"), "data").String()
	rc, err := r.cache.Open(req.Context(), e.sha256, e.size, off, r.fetcher(req, src, e.sha256, e.size))
	if err != nil {
		writeError(w, http.StatusBadGateway, "unavailable", err.Error())
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("ETag", `"`+e.sha256+`"`)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", "application/octet-stream")
	// The agent counts bytes served by a relay apart from the central
	// server's (the run record's downloads).
	h.Set("Imprint-Source", "relay")
	h.Set("Content-Length", strconv.FormatInt(end-off, 10))
	if off > 0 || end < e.size {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, end-1, e.size))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if req.Method == http.MethodHead {
		return
	}
	io.CopyN(w, rc, end-off)
}

// fetcher is how the cache fills a miss of blob sha from src on the
// central server: a GET with the machine's own token, so the central
// server still decides what the session may read.
func (r *Relay) fetcher(req *http.Request, src, sha string, size int64) func(ctx context.Context) (io.ReadCloser, error) {
	auth := req.Header.Get("Authorization")
	return func(ctx context.Context) (io.ReadCloser, error) {
		out, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, err
		}
		out.Header.Set("Authorization", auth)
		resp, err := r.hc.Do(out)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("central server answered %s for %s", resp.Status, src)
		}
		r.log.Info("relay cache miss: fetching from the central server", "sha256", sha, "bytes", size)
		return resp.Body, nil
	}
}

// folderData streams a Folder version as the central server does (the
// same tar, content.WriteTarFrom), each file from the cache by its
// SHA-256: a miss is fetched once from the central server's file route
// with the machine's token, checked, and kept, so the next machine — or
// another folder holding the same file — costs the uplink nothing.
func (r *Relay) folderData(w http.ResponseWriter, req *http.Request, e *infoEntry) {
	id, no := strings.ToLower(req.PathValue("id")), req.PathValue("no")
	open := func(ctx context.Context, mf deploy.ManifestFile) (io.ReadCloser, error) {
		src := r.upstream.JoinPath("v1", "content", id, no, "files").String() + "/" + escapePath(mf.Path)
		sha := strings.ToLower(mf.SHA256)
		return r.cache.Open(ctx, sha, mf.Size, 0, r.fetcher(req, src, sha, mf.Size))
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-tar")
	h.Set("ETag", `"`+e.sha256+`"`)
	cw := &countingWriter{w: w}
	if err := content.WriteTarFrom(req.Context(), cw, e.manifest, open); err != nil {
		if cw.n == 0 {
			h.Del("ETag")
			writeError(w, http.StatusBadGateway, "unavailable", err.Error())
			return
		}
		r.log.Error("folder download broken off", "content", id+":"+no, "err", err)
		panic(http.ErrAbortHandler) // a short tar must not look like a whole one
	}
}

// escapePath escapes each segment of a manifest path for a URL.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// countingWriter counts what reached the client.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// rangeStart reads "Range: bytes=N-" (what agents send to resume) or
// "bytes=N-M" (a peer-sharing chunk) with an If-Range that must name this
// version; other forms get the whole blob. end is one past the last byte.
func rangeStart(req *http.Request, e *infoEntry) (start, end int64, ok bool) {
	rg := req.Header.Get("Range")
	if rg == "" {
		return 0, e.size, true
	}
	if ir := req.Header.Get("If-Range"); ir != "" && strings.Trim(ir, `"`) != e.sha256 {
		return 0, e.size, true
	}
	spec, ok := strings.CutPrefix(rg, "bytes=")
	first, last, ok2 := strings.Cut(spec, "-")
	if !ok || !ok2 {
		return 0, e.size, true
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil || n < 0 {
		return 0, e.size, true
	}
	end = e.size
	if last != "" {
		m, err := strconv.ParseInt(last, 10, 64)
		if err != nil || m < n {
			return 0, e.size, true
		}
		end = min(m+1, e.size)
	}
	if n >= e.size {
		return 0, 0, false
	}
	return n, end, true
}

func clientHost(req *http.Request) string {
	h, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return h
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
