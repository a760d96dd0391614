package cert_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth/cert"
)

// fixture is a CA with its CRL on disk and a verifier over them.
type fixture struct {
	ca      *ca
	dir     string
	crlPath string
	clk     *clock
	cfg     cert.Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ca: newCA(t, "Imprint Test Device CA"), dir: t.TempDir(), clk: &clock{t: t0}}
	f.crlPath = writeFile(t, f.dir, "ca.crl", f.ca.crl(t, t0.Add(-time.Hour), 7*24*time.Hour))
	f.cfg = cert.DefaultConfig()
	f.cfg.ClientCAFile = writeFile(t, f.dir, "ca.pem", certPEM(f.ca.cert))
	f.cfg.CRLFiles = []string{f.crlPath}
	f.cfg.SubjectPattern = `(CN=)?pc-\d{3}\.corp\.example`
	return f
}

func (f *fixture) verifier(t *testing.T) *cert.Verifier {
	t.Helper()
	v, err := cert.NewVerifier(f.cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	v.Now = f.clk.Now
	return v
}

// tlsServer is a real HTTPS server on 127.0.0.1 that answers with the
// verified certificate subject, or "none".
type tlsServer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	rejected []rejection
}

type rejection struct {
	resumed bool
	err     string
}

func startServer(t *testing.T, v *cert.Verifier) *tlsServer {
	t.Helper()
	s := &tlsServer{}
	v.OnReject = func(cs tls.ConnectionState, err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.rejected = append(s.rejected, rejection{resumed: cs.DidResume, err: err.Error()})
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := v.Identity(*r.TLS); ok {
			fmt.Fprintf(w, "%s serial=%s fp=%d", id.Subject, id.Serial, len(id.Fingerprint))
			return
		}
		io.WriteString(w, "none")
	}))
	s.srv.TLS = v.TLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *tlsServer) rejections() []rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rejection(nil), s.rejected...)
}

// client returns an HTTP client that trusts the server and presents cert
// (if any) whatever CAs the server asks for, as a hostile client would; one
// new connection per request.
func (s *tlsServer) client(cache tls.ClientSessionCache, cert ...tls.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(s.srv.Certificate())
	present := &tls.Certificate{}
	if len(cert) > 0 {
		present = &cert[0]
	}
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{
			RootCAs:              roots,
			ClientSessionCache:   cache,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return present, nil },
		},
	}}
}

// get returns the body, whether the TLS session was resumed, and any error.
func get(c *http.Client, url string) (string, bool, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.TLS.DidResume, err
}

func TestClientCertificates(t *testing.T) {
	f := newFixture(t)
	other := newCA(t, "Someone Else's CA")
	revoked := f.ca.issue(t, leafOpts{})
	f.crlPath = writeFile(t, f.dir, "ca.crl", f.ca.crl(t, t0.Add(-time.Hour), 7*24*time.Hour, revoked))
	v := f.verifier(t)
	srv := startServer(t, v)

	good := f.ca.issue(t, leafOpts{})
	tests := []struct {
		name     string
		certs    []tls.Certificate
		wantBody string // "" = handshake refused
		wantWhy  string // for refusals by our VerifyConnection: part of the reason
	}{
		{"good", []tls.Certificate{good}, "CN=pc-001.corp.example serial=" + good.Leaf.SerialNumber.Text(16) + " fp=64", ""},
		{"no certificate", nil, "none", ""},
		{"SAN matches the subject rule", []tls.Certificate{f.ca.issue(t, leafOpts{cn: "Device 7", dns: []string{"pc-007.corp.example"}})}, "CN=Device 7 serial=", ""},
		{"expired", []tls.Certificate{f.ca.issue(t, leafOpts{notBefore: t0.AddDate(-2, 0, 0), notAfter: t0.Add(-time.Minute)})}, "", ""},
		{"not yet valid", []tls.Certificate{f.ca.issue(t, leafOpts{notBefore: t0.Add(time.Hour)})}, "", ""},
		{"revoked", []tls.Certificate{revoked}, "", "is revoked"},
		{"another CA", []tls.Certificate{other.issue(t, leafOpts{})}, "", ""},
		{"server-auth-only EKU", []tls.Certificate{f.ca.issue(t, leafOpts{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})}, "", ""},
		{"no EKU while clientAuth is required", []tls.Certificate{f.ca.issue(t, leafOpts{noEKU: true})}, "", "clientAuth"},
		{"subject not matching the rule", []tls.Certificate{f.ca.issue(t, leafOpts{cn: "laptop-x", dns: []string{"pc-001.corp.example.evil.example"}})}, "", "SubjectPattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.rejections())
			body, _, err := get(srv.client(nil, tt.certs...), srv.srv.URL)
			if tt.wantBody == "" {
				if err == nil {
					t.Fatalf("handshake accepted (body %q), want refused", body)
				}
			} else {
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				if !strings.HasPrefix(body, tt.wantBody) {
					t.Fatalf("body = %q, want prefix %q", body, tt.wantBody)
				}
			}
			if tt.wantWhy != "" {
				r := srv.rejections()
				if len(r) != before+1 || !strings.Contains(r[len(r)-1].err, tt.wantWhy) {
					t.Fatalf("rejections %+v, want a new one mentioning %q", r[before:], tt.wantWhy)
				}
			}
		})
	}
}

func TestNoEKUAcceptedWhenNotRequired(t *testing.T) {
	f := newFixture(t)
	f.cfg.RequireEKUClientAuth = false
	srv := startServer(t, f.verifier(t))
	body, _, err := get(srv.client(nil, f.ca.issue(t, leafOpts{noEKU: true})), srv.srv.URL)
	if err != nil || !strings.HasPrefix(body, "CN=pc-001") {
		t.Fatalf("GET = %q, %v; want accepted", body, err)
	}
	// An EKU list without clientAuth is still refused.
	_, _, err = get(srv.client(nil, f.ca.issue(t, leafOpts{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})), srv.srv.URL)
	if err == nil {
		t.Fatal("server-auth-only certificate accepted")
	}
}

func TestStaleCRLRefusesGoodCertificate(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		maxAge  time.Duration
		want    string
	}{
		{"nextUpdate passed", 8 * 24 * time.Hour, 0, "nextUpdate"},
		{"older than CRLMaxAge", 2 * 24 * time.Hour, 24 * time.Hour, "CRLMaxAge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.CRLMaxAge = tt.maxAge
			v := f.verifier(t)
			srv := startServer(t, v)
			good := f.ca.issue(t, leafOpts{})
			if _, _, err := get(srv.client(nil, good), srv.srv.URL); err != nil {
				t.Fatalf("fresh CRL: %v", err)
			}
			f.clk.Advance(tt.advance)
			if body, _, err := get(srv.client(nil, good), srv.srv.URL); err == nil {
				t.Fatalf("stale CRL: accepted (body %q)", body)
			}
			r := srv.rejections()
			if len(r) != 1 || !strings.Contains(r[0].err, tt.want) {
				t.Fatalf("rejections = %+v, want one mentioning %q", r, tt.want)
			}
			// A client without a certificate is unaffected.
			if body, _, err := get(srv.client(nil), srv.srv.URL); err != nil || body != "none" {
				t.Fatalf("no-cert client: %q, %v", body, err)
			}
		})
	}
}

func TestRevocationEnforcedOnResumedSession(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t)
	srv := startServer(t, v)
	leaf := f.ca.issue(t, leafOpts{})
	c := srv.client(tls.NewLRUClientSessionCache(4), leaf)

	if _, resumed, err := get(c, srv.srv.URL); err != nil || resumed {
		t.Fatalf("first connection: resumed=%v err=%v", resumed, err)
	}
	body, resumed, err := get(c, srv.srv.URL)
	if err != nil || !resumed {
		t.Fatalf("second connection: resumed=%v err=%v; want a resumed session", resumed, err)
	}
	if !strings.HasPrefix(body, "CN=pc-001") {
		t.Fatalf("identity on a resumed session = %q", body)
	}

	writeFile(t, f.dir, "ca.crl", f.ca.crl(t, t0, 7*24*time.Hour, leaf))
	if err := v.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if body, _, err := get(c, srv.srv.URL); err == nil {
		t.Fatalf("resumed session with a revoked certificate accepted (body %q)", body)
	}
	r := srv.rejections()
	if len(r) != 1 || !r[0].resumed || !strings.Contains(r[0].err, "is revoked") {
		t.Fatalf("rejections = %+v, want one revoked on a resumed handshake", r)
	}
}
