package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// testCA is a certificate authority made in the test: the device CA the
// server trusts, or a stranger's.
type testCA struct {
	cert   *x509.Certificate
	key    crypto.Signer
	serial int64
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := mustECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Contoso"}},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: key, serial: 100}
}

func mustECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// leaf issues a client certificate for cn; edit adjusts the template
// (validity, EKU) before signing.
func (ca *testCA) leaf(t *testing.T, cn string, edit func(*x509.Certificate)) tls.Certificate {
	t.Helper()
	key := mustECKey(t)
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Contoso"}},
		DNSNames:     []string{cn + ".corp.contoso.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatalf("issue %s: %v", cn, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// writeCRL writes the CA's CRL listing revoked, valid from thisUpdate to
// nextUpdate, as PEM.
func (ca *testCA) writeCRL(t *testing.T, path string, number int64, thisUpdate, nextUpdate time.Time, revoked ...tls.Certificate) {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.Leaf.SerialNumber, RevocationTime: thisUpdate})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatalf("create CRL: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (ca *testCA) writePEM(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// devicePKI is the device CA with its CRL and one certificate of each kind.
type devicePKI struct {
	ca                                    *testCA
	caFile, crlFile                       string
	good, expired, revoked, other, srvEKU tls.Certificate
}

func newDevicePKI(t *testing.T, crlNextUpdate time.Time) *devicePKI {
	t.Helper()
	dir := t.TempDir()
	p := &devicePKI{ca: newTestCA(t, "Contoso Device CA"), caFile: filepath.Join(dir, "client-ca.pem"), crlFile: filepath.Join(dir, "device-ca.crl")}
	p.ca.writePEM(t, p.caFile)
	p.good = p.ca.leaf(t, "pc-01", nil)
	p.expired = p.ca.leaf(t, "pc-old", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-60*24*time.Hour), time.Now().Add(-24*time.Hour)
	})
	p.revoked = p.ca.leaf(t, "pc-stolen", nil)
	p.srvEKU = p.ca.leaf(t, "pc-srv", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
	p.other = newTestCA(t, "Fabrikam CA").leaf(t, "pc-01", nil)
	p.ca.writeCRL(t, p.crlFile, 1, time.Now().Add(-2*time.Hour), crlNextUpdate, p.revoked)
	return p
}

func startCertServer(t *testing.T, p *devicePKI, edit func(*server.Config)) *testServer {
	t.Helper()
	return startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.ClientCAFile, c.CRLFiles = p.caFile, []string{p.crlFile}
		if edit != nil {
			edit(c)
		}
	})
}

// certClient is a client of ts that presents cert (none when nil) whenever
// the server asks, even when its issuer is not among the CAs the server
// names, so that a wrong certificate reaches the server instead of being
// silently left out by the TLS stack.
func (ts *testServer) certClient(cert *tls.Certificate, cache tls.ClientSessionCache) *http.Client {
	base := ts.api.Transport.(*http.Transport).TLSClientConfig
	cfg := &tls.Config{
		RootCAs:            base.RootCAs,
		ClientSessionCache: cache,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// certLogin asks for a session by certificate on a fresh connection. err
// is the transport error when the handshake is refused.
func certLogin(t *testing.T, ts *testServer, c *http.Client, uuid string) (*http.Response, []byte, error) {
	t.Helper()
	body := `{"method":"certificate","device":{"uuid":"` + devUUID(uuid) + `"}}`
	resp, err := c.Post(ts.apiURL("/v1/auth/token"), "application/json", strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b, nil
}

type methodsAnswer struct {
	Methods          []string `json:"methods"`
	BootImageMethods []string `json:"bootImageMethods"`
}

func TestCertificateAuthenticationOverMutualTLS(t *testing.T) {
	p := newDevicePKI(t, time.Now().Add(7*24*time.Hour))
	// Handshake refusals count in the throttle: leave room for all six.
	ts := startCertServer(t, p, func(c *server.Config) { c.Throttle.FreeFailures = 10 })

	// The good certificate gets a session named after its subject.
	resp, body, err := certLogin(t, ts, ts.certClient(&p.good, nil), "cert-good")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("good certificate: %v %v %s", err, resp, body)
	}
	var tok tokenAnswer
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token answer %s: %v", body, err)
	}
	if r := ts.machine(t, "GET", "/v1/tasksequences", tok.Token, nil, nil); r.StatusCode != 200 {
		t.Fatalf("list with the certificate session: %d", r.StatusCode)
	}
	var sessions []deploy.Session
	ts.do(t, "GET", "/admin/v1/sessions", nil, &sessions)
	if len(sessions) != 1 || sessions[0].Method != auth.MethodCertificate || sessions[0].Subject != "CN=pc-01,O=Contoso" || sessions[0].DeviceID != devUUID("cert-good") {
		t.Fatalf("sessions = %+v, want one certificate session for CN=pc-01,O=Contoso", sessions)
	}

	// Every bad certificate is refused in the handshake by the verifier
	// (chain, validity, usage and the CRL), so it is audited; it never falls
	// back to an unauthenticated connection.
	refused := []struct {
		name  string
		cert  tls.Certificate
		alert string
	}{
		{"expired", p.expired, "tls: bad certificate"},
		{"signed by another CA", p.other, "tls: bad certificate"},
		{"server-auth EKU only", p.srvEKU, "tls: bad certificate"},
		{"revoked", p.revoked, "tls: bad certificate"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := certLogin(t, ts, ts.certClient(&tc.cert, nil), "cert-"+tc.name)
			if err == nil {
				t.Fatalf("handshake accepted: %d %s", resp.StatusCode, body)
			}
			if !strings.Contains(err.Error(), tc.alert) {
				t.Fatalf("err = %v, want the alert %q", err, tc.alert)
			}
		})
	}

	// No certificate: the handshake completes (other modes stay usable on
	// the shared port) but the certificate method is refused with the one
	// refusal every mode gives.
	resp, noCert, err := certLogin(t, ts, ts.certClient(nil, nil), "cert-none")
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("no certificate: %v %v %s", err, resp, noCert)
	}
	_, wrongMethod, _ := certLogin(t, ts, ts.certClient(nil, nil), "cert-none")
	anon := ts.machine(t, "POST", "/v1/auth/token", "", map[string]any{"method": "anonymous"}, nil)
	anonBody, _ := io.ReadAll(anon.Body)
	if string(noCert) != string(anonBody) || string(wrongMethod) != string(noCert) {
		t.Errorf("no-certificate answer %s differs from the mode-off answer %s", noCert, anonBody)
	}

	// The audit log has the success with the subject, each handshake
	// refusal with the certificate's subject, and the no-certificate
	// refusals, all under method certificate.
	var events []deploy.AuditEvent
	ts.do(t, "GET", "/admin/v1/audit", nil, &events)
	type row struct{ Outcome, Actor, Device string }
	var got []row
	for _, e := range events {
		if e.Action == "auth.attempt" && e.Details["method"] == auth.MethodCertificate {
			got = append(got, row{e.Outcome, e.Actor, e.DeviceID})
		}
	}
	want := []row{
		{auth.OutcomeSuccess, "CN=pc-01,O=Contoso", devUUID("cert-good")},
		{auth.OutcomeFailure, p.expired.Leaf.Subject.String(), ""},
		{auth.OutcomeFailure, p.other.Leaf.Subject.String(), ""},
		{auth.OutcomeFailure, p.srvEKU.Leaf.Subject.String(), ""},
		{auth.OutcomeFailure, p.revoked.Leaf.Subject.String(), ""},
		{auth.OutcomeFailure, "", devUUID("cert-none")},
		{auth.OutcomeFailure, "", devUUID("cert-none")},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("certificate attempts in the audit log (-want +got):\n%s", d)
	}
}

// Refusals in the handshake never reach the token handler; they must still
// be audited (issue 3 item 9: every authentication attempt).
func TestCertificateHandshakeRefusalsAreAudited(t *testing.T) {
	p := newDevicePKI(t, time.Now().Add(7*24*time.Hour))
	ts := startCertServer(t, p, nil)
	for _, c := range []tls.Certificate{p.expired, p.other, p.srvEKU, p.revoked} {
		if _, _, err := certLogin(t, ts, ts.certClient(&c, nil), "x"); err == nil {
			t.Fatalf("%s accepted", c.Leaf.Subject)
		}
	}
	var events []deploy.AuditEvent
	ts.do(t, "GET", "/admin/v1/audit", nil, &events)
	var got []string
	for _, e := range events {
		if e.Action == "auth.attempt" && e.Details["method"] == auth.MethodCertificate && e.Outcome == auth.OutcomeFailure {
			got = append(got, e.Details["reason"])
		}
	}
	if len(got) != 4 {
		t.Fatalf("audited certificate refusals = %q, want 4 (expired, other CA, server-auth EKU, revoked), each with a reason", got)
	}
	for _, r := range got {
		if r == "" {
			t.Errorf("a refusal has no reason: %q", got)
		}
	}
}

func TestCertificateStaleCRLFailsClosed(t *testing.T) {
	p := newDevicePKI(t, time.Now().Add(-time.Minute))
	ts := startCertServer(t, p, nil)
	resp, body, err := certLogin(t, ts, ts.certClient(&p.good, nil), "stale")
	if err == nil {
		t.Fatalf("good certificate accepted with a stale CRL: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(err.Error(), "tls: bad certificate") {
		t.Fatalf("err = %v, want a bad-certificate alert", err)
	}
}

// A resumed TLS session (no certificate sent again) is still checked and
// still carries the certificate's identity.
func TestCertificateOnResumedSession(t *testing.T) {
	p := newDevicePKI(t, time.Now().Add(7*24*time.Hour))
	ts := startCertServer(t, p, nil)
	c := ts.certClient(&p.good, tls.NewLRUClientSessionCache(4))
	var resumed bool
	for i := 0; i < 3 && !resumed; i++ {
		resp, err := c.Post(ts.apiURL("/v1/auth/token"), "application/json", strings.NewReader(`{"method":"certificate"}`))
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("attempt %d (resumed %v): %d", i, resp.TLS.DidResume, resp.StatusCode)
		}
		resumed = resp.TLS.DidResume
	}
	if !resumed {
		t.Fatal("no connection resumed a TLS session; the test proves nothing")
	}
}

func TestCertificateModeAndPrecedence(t *testing.T) {
	const code = "Correct-Horse-Battery-42"
	t.Run("without client-ca", func(t *testing.T) {
		p := newDevicePKI(t, time.Now().Add(24*time.Hour))
		ts := startAuthServer(t)
		ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": code}, nil)
		var m methodsAnswer
		ts.machine(t, "GET", "/v1/auth/methods", "", nil, &m)
		if d := cmp.Diff(methodsAnswer{Methods: []string{"passcode"}, BootImageMethods: []string{"passcode"}}, m); d != "" {
			t.Errorf("methods (-want +got):\n%s", d)
		}
		resp, body, err := certLogin(t, ts, ts.certClient(&p.good, nil), "d")
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("certificate without client-ca: %v %v %s", err, resp, body)
		}
	})
	t.Run("with client-ca", func(t *testing.T) {
		p := newDevicePKI(t, time.Now().Add(24*time.Hour))
		ts := startCertServer(t, p, nil)
		ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": code}, nil)
		var m methodsAnswer
		ts.machine(t, "GET", "/v1/auth/methods", "", nil, &m)
		if d := cmp.Diff(methodsAnswer{Methods: []string{"certificate"}, BootImageMethods: []string{"certificate"}}, m); d != "" {
			t.Errorf("methods (-want +got):\n%s", d)
		}
		// The stronger mode is on: the passcode is refused like a wrong
		// one (GN-3) until the admin allows it alongside.
		if r, _ := login(t, ts, code, "os-1"); r.StatusCode != 401 {
			t.Errorf("passcode next to certificates: %d, want 401", r.StatusCode)
		}
		ts.adminJSON(t, "PUT", "/admin/v1/security/passcode-alongside", map[string]bool{"on": true}, nil)
		ts.machine(t, "GET", "/v1/auth/methods", "", nil, &m)
		if d := cmp.Diff(methodsAnswer{Methods: []string{"certificate", "passcode"}, BootImageMethods: []string{"certificate"}}, m); d != "" {
			t.Errorf("methods with passcode-alongside (-want +got):\n%s", d)
		}
		if r, _ := login(t, ts, code, "os-1"); r.StatusCode != 200 {
			t.Errorf("passcode next to certificates, allowed: %d", r.StatusCode)
		}
		// No subject rule: any certificate of the CA is accepted, and the
		// security view says so (CT-2).
		var view struct{ Missing []string }
		ts.adminJSON(t, "GET", "/admin/v1/security", nil, &view)
		if !strings.Contains(strings.Join(view.Missing, "\n"), "no subject rule") {
			t.Errorf("missing = %q, want the subject-rule warning", view.Missing)
		}
	})
	t.Run("subject pattern", func(t *testing.T) {
		p := newDevicePKI(t, time.Now().Add(24*time.Hour))
		ts := startCertServer(t, p, func(c *server.Config) { c.CertSubjectPattern = `pc-\d+\.corp\.contoso\.example` })
		if resp, body, err := certLogin(t, ts, ts.certClient(&p.good, nil), "d"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("matching SAN: %v %v %s", err, resp, body)
		}
		var view struct{ Missing []string }
		ts.adminJSON(t, "GET", "/admin/v1/security", nil, &view)
		if strings.Contains(strings.Join(view.Missing, "\n"), "subject rule") {
			t.Errorf("missing = %q with a subject rule set", view.Missing)
		}
		odd := p.ca.leaf(t, "kiosk", nil)
		if _, _, err := certLogin(t, ts, ts.certClient(&odd, nil), "d"); err == nil || !strings.Contains(err.Error(), "tls: bad certificate") {
			t.Fatalf("certificate outside the subject rule: err = %v, want a bad-certificate alert", err)
		}
	})
}

// A certificate revoked while the server runs stops working once the CRL
// files are read again, with no restart (CT-3).
func TestRevocationTakesEffectWithoutRestart(t *testing.T) {
	p := newDevicePKI(t, time.Now().Add(7*24*time.Hour))
	ts := startCertServer(t, p, func(c *server.Config) { c.CRLReload = 50 * time.Millisecond })
	if resp, body, err := certLogin(t, ts, ts.certClient(&p.good, nil), "pc"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("good certificate before revocation: %v %v %s", err, resp, body)
	}
	p.ca.writeCRL(t, p.crlFile, 2, time.Now().Add(-time.Minute), time.Now().Add(7*24*time.Hour), p.revoked, p.good)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, err := certLogin(t, ts, ts.certClient(&p.good, nil), "pc")
		if err != nil && strings.Contains(err.Error(), "bad certificate") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked certificate still works after the CRL changed (last err %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
