package agent_test

// The agent against the real server (started in-process) and the fake
// Entra ID issuer: device-code sign-in, client certificates and DeployR's
// precedence of Entra ID and certificates over the passcode.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/auth/entra/entratest"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/server/servertest"
)

const (
	e2eTenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	e2eClientID = "6d2c3a57-0b3e-4b7e-9a44-3b8f6c1d2e90"
	e2eAudience = "api://imprint-test"
	e2eRole     = "Imprint.Deploy"
	e2eTSID     = "61111111-2222-3333-4444-555555555555"
	e2ePasscode = "Correct-Horse-Battery-42"
)

// realServer is an in-process imprint server on 127.0.0.1 with one empty
// task sequence, and its admin client.
type realServer struct {
	*server.Server
	admin *client.Admin
	caPEM []byte
}

func startRealServer(t *testing.T, edit func(*server.Config)) *realServer {
	t.Helper()
	s := servertest.Start(t, edit)
	ca, err := os.ReadFile(server.CACertPath(s.DataDir()))
	if err != nil {
		t.Fatal(err)
	}
	rs := &realServer{Server: s, admin: client.NewAdmin(s.Socket()), caPEM: ca}
	doc := `{"id":"` + e2eTSID + `","name":"Lab deploy","architecture":"Any","versions":[{"id":"v","taskSequenceId":"` + e2eTSID + `","versionNo":1,"status":"Active","steps":[]}]}`
	if _, ferrs, err := rs.admin.ImportTaskSequence(context.Background(), strings.NewReader(doc), client.ImportNew); err != nil || len(ferrs) > 0 {
		t.Fatalf("import task sequence: %v %v", err, ferrs)
	}
	return rs
}

func (rs *realServer) machine(t *testing.T, opts ...client.MachineOption) *client.Machine {
	t.Helper()
	m, err := client.NewMachine("https://"+rs.APIAddr().String(), rs.caPEM, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (rs *realServer) setEntra(t *testing.T, iss *entratest.Issuer) {
	t.Helper()
	if _, err := rs.admin.SetEntra(context.Background(), client.EntraConfig{TenantID: e2eTenant, ClientID: e2eClientID,
		Audience: e2eAudience, RequiredRole: e2eRole, Authority: iss.Authority()}); err != nil {
		t.Fatalf("set entra: %v", err)
	}
}

func (rs *realServer) setPasscode(t *testing.T) {
	t.Helper()
	if _, err := rs.admin.SetPasscode(context.Background(), e2ePasscode); err != nil {
		t.Fatalf("set passcode: %v", err)
	}
}

// sessions are the live sessions as "method subject".
func (rs *realServer) sessions(t *testing.T) []string {
	t.Helper()
	all, err := rs.admin.Sessions(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range all {
		out = append(out, strings.TrimSpace(s.Method+" "+s.Subject))
	}
	return out
}

// syncBuffer is a console output the test reads while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newE2EAgent(t *testing.T, m *client.Machine, out *syncBuffer) *agent.Agent {
	t.Helper()
	return &agent.Agent{
		Client:   m,
		Console:  agent.NewConsole(strings.NewReader(""), out), // nobody types anything
		StateDir: t.TempDir(),
		TS:       e2eTSID,
		Gatherer: agent.Gatherer{Root: t.TempDir(), Addrs: func() ([]string, error) { return nil, nil }},
	}
}

var userCodeRe = regexp.MustCompile(`enter the code ([A-Z]+)`)

func TestAgentEntraDeviceCodeAgainstRealServer(t *testing.T) {
	iss := entratest.NewIssuer(t, e2eTenant)
	rs := startRealServer(t, nil)
	rs.setEntra(t, iss)

	var out syncBuffer
	a := newE2EAgent(t, rs.machine(t), &out)
	a.BootImage = true
	// The agent's waits between polls: the first one is where a person
	// would sign in on their phone; the test approves the code it shows.
	var waits []time.Duration
	a.Sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if len(waits) == 1 {
			m := userCodeRe.FindStringSubmatch(out.String())
			if m == nil {
				t.Errorf("the console shows no user code before polling:\n%s", out.String())
				return context.Canceled
			}
			if !strings.Contains(out.String(), "https://microsoft.com/devicelogin") {
				t.Errorf("the console shows no verification URL:\n%s", out.String())
			}
			iss.Approve(m[1], iss.Claims(e2eAudience, time.Now(), e2eRole))
		}
		return ctx.Err()
	}
	if err := a.Run(context.Background(), agent.State{}, true); err != nil {
		t.Fatalf("run: %v\nconsole:\n%s", err, out.String())
	}
	if len(waits) != 1 || waits[0] != 5*time.Second {
		t.Errorf("waits = %v, want one of the issuer's 5 s interval", waits)
	}
	if !strings.Contains(out.String(), "Plan for Lab deploy") {
		t.Errorf("the agent did not get the task sequence:\n%s", out.String())
	}
	if got := rs.sessions(t); len(got) != 1 || got[0] != "entra alice@contoso.example" {
		t.Errorf("sessions = %q, want one Entra session of alice@contoso.example", got)
	}
}

func TestAgentEntraDeclinedFailsClearly(t *testing.T) {
	iss := entratest.NewIssuer(t, e2eTenant)
	rs := startRealServer(t, nil)
	rs.setEntra(t, iss)
	var out syncBuffer
	a := newE2EAgent(t, rs.machine(t), &out)
	a.BootImage = true
	a.Sleep = func(ctx context.Context, d time.Duration) error {
		if m := userCodeRe.FindStringSubmatch(out.String()); m != nil {
			iss.Deny(m[1])
		}
		return ctx.Err()
	}
	err := a.Run(context.Background(), agent.State{}, true)
	if deploy.ErrorKind(err) != deploy.KindUnauthorized || !strings.Contains(err.Error(), "declined") {
		t.Fatalf("err = %v, want unauthorized naming the declined sign-in", err)
	}
}

func TestAgentClientCertificateAgainstRealServer(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := agentTestCA(t)
	caFile, crlFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.crl")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o600)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour)}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(crlFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 0o600)
	rs := startRealServer(t, func(c *server.Config) { c.ClientCAFile, c.CRLFiles = caFile, []string{crlFile} })
	rs.setPasscode(t) // offered too, after the certificate, once allowed alongside it
	if _, err := rs.admin.SetPasscodeAlongside(context.Background(), true); err != nil {
		t.Fatal(err)
	}

	var out syncBuffer
	a := newE2EAgent(t, rs.machine(t, client.WithClientCert(agentTestLeaf(t, ca, caKey, "pc-07"))), &out)
	if err := a.Run(context.Background(), agent.State{}, true); err != nil {
		t.Fatalf("run: %v\nconsole:\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "Passcode") {
		t.Errorf("the agent prompted although it has a certificate:\n%s", out.String())
	}
	if got := rs.sessions(t); len(got) != 1 || got[0] != "certificate CN=pc-07" {
		t.Errorf("sessions = %q, want one certificate session of CN=pc-07", got)
	}

	// Without the certificate the same agent falls to the passcode prompt,
	// which nobody answers.
	out = syncBuffer{}
	b := newE2EAgent(t, rs.machine(t), &out)
	if err := b.Run(context.Background(), agent.State{}, true); deploy.ErrorKind(err) != deploy.KindUnauthorized || !strings.Contains(out.String(), "Passcode: ") {
		t.Fatalf("without a certificate: err = %v, console:\n%s", err, out.String())
	}
}

func TestAgentPrecedenceEntraOverPasscode(t *testing.T) {
	iss := entratest.NewIssuer(t, e2eTenant)
	rs := startRealServer(t, nil)
	rs.setPasscode(t)
	rs.setEntra(t, iss)

	t.Run("boot image is not offered the passcode", func(t *testing.T) {
		var out syncBuffer
		a := newE2EAgent(t, rs.machine(t), &out)
		a.BootImage = true
		a.Vars = map[string]string{"Passcode": e2ePasscode}
		a.Sleep = func(ctx context.Context, d time.Duration) error {
			if m := userCodeRe.FindStringSubmatch(out.String()); m != nil {
				iss.Deny(m[1])
			}
			return ctx.Err()
		}
		err := a.Run(context.Background(), agent.State{}, true)
		if deploy.ErrorKind(err) != deploy.KindUnauthorized || strings.Contains(err.Error(), "passcode") {
			t.Fatalf("err = %v, want an Entra-only refusal", err)
		}
		events, aerr := rs.admin.AuditEvents(context.Background(), 0, 0)
		if aerr != nil {
			t.Fatal(aerr)
		}
		for _, e := range events {
			if e.Action == "auth.attempt" && e.Details["method"] == "passcode" {
				t.Errorf("the boot-image agent sent its passcode: %+v", e)
			}
		}
	})
	t.Run("installed OS uses the Passcode variable", func(t *testing.T) {
		// The server refuses the passcode next to Entra ID unless the
		// admin allows it for installed OSes (security.md GN-3).
		if _, err := rs.admin.SetPasscodeAlongside(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		a := newE2EAgent(t, rs.machine(t), &out)
		a.Vars = map[string]string{"Passcode": e2ePasscode}
		a.Sleep = func(ctx context.Context, d time.Duration) error {
			t.Errorf("the agent waited %v (device code?) although it has the Passcode variable", d)
			return context.Canceled
		}
		if err := a.Run(context.Background(), agent.State{}, true); err != nil {
			t.Fatalf("run: %v\nconsole:\n%s", err, out.String())
		}
		if strings.Contains(out.String(), "enter the code") || strings.Contains(out.String(), e2ePasscode) {
			t.Errorf("console:\n%s", out.String())
		}
		got := rs.sessions(t)
		if len(got) != 1 || got[0] != "passcode" {
			t.Errorf("sessions = %q, want one passcode session", got)
		}
	})
}

func agentTestCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Agent Test Device CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}

func agentTestLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// GN-1: an agent that got in anonymously says so on the console, and a
// server limiting anonymous to other networks neither offers nor accepts
// it from here.
func TestAgentAnonymousBannerAndNetworks(t *testing.T) {
	rs := startRealServer(t, nil)
	if _, err := rs.admin.SetAnonymous(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	a := newE2EAgent(t, rs.machine(t), &out)
	if err := a.Run(context.Background(), agent.State{}, true); err != nil {
		t.Fatalf("run: %v\nconsole:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "anonymous authentication is on") {
		t.Errorf("no anonymous banner on the console:\n%s", out.String())
	}

	if _, err := rs.admin.SetAnonymous(context.Background(), true, "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	out = syncBuffer{}
	b := newE2EAgent(t, rs.machine(t), &out)
	if err := b.Run(context.Background(), agent.State{}, true); deploy.ErrorKind(err) != deploy.KindUnavailable {
		t.Errorf("anonymous limited to another network: err = %v, want no method offered\nconsole:\n%s", err, out.String())
	}
}
