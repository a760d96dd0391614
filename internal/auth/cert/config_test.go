package cert_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth/cert"
)

func TestNewVerifierErrors(t *testing.T) {
	dir := t.TempDir()
	good := newCA(t, "Good CA")
	other := newCA(t, "Other CA")
	leaf := good.issue(t, leafOpts{})
	caFile := writeFile(t, dir, "ca.pem", certPEM(good.cert))
	crlFile := writeFile(t, dir, "ca.crl", good.crl(t, t0, time.Hour))
	tests := []struct {
		name string
		edit func(c *cert.Config)
		want string
	}{
		{"no CA file", func(c *cert.Config) { c.ClientCAFile = "" }, "ClientCAFile: required"},
		{"no CRLs", func(c *cert.Config) { c.CRLFiles = nil }, "CRLFiles: at least one"},
		{"negative max age", func(c *cert.Config) { c.CRLMaxAge = -time.Second }, "CRLMaxAge"},
		{"bad pattern", func(c *cert.Config) { c.SubjectPattern = "pc-(" }, "SubjectPattern"},
		{"missing CA file", func(c *cert.Config) { c.ClientCAFile = dir + "/nope.pem" }, "nope.pem"},
		{"empty CA file", func(c *cert.Config) { c.ClientCAFile = writeFile(t, dir, "empty.pem", nil) }, "no PEM certificates found"},
		{"garbage CA file", func(c *cert.Config) { c.ClientCAFile = writeFile(t, dir, "junk.pem", []byte("hello")) }, "no PEM certificates found"},
		{"corrupt certificate", func(c *cert.Config) {
			c.ClientCAFile = writeFile(t, dir, "bad.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
		}, "certificate 1"},
		{"key in CA file", func(c *cert.Config) {
			c.ClientCAFile = writeFile(t, dir, "key.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		}, `"PRIVATE KEY"`},
		{"leaf in CA file", func(c *cert.Config) { c.ClientCAFile = writeFile(t, dir, "leaf.pem", certPEM(leaf.Leaf)) }, "not a CA certificate"},
		{"CRL of another CA", func(c *cert.Config) {
			c.CRLFiles = []string{writeFile(t, dir, "other.crl", other.crl(t, t0, time.Hour))}
		}, "is not a CA in"},
		{"CRL file missing", func(c *cert.Config) { c.CRLFiles = []string{dir + "/missing.crl"} }, "missing.crl"},
		{"CRL file garbage", func(c *cert.Config) { c.CRLFiles = []string{writeFile(t, dir, "junk.crl", []byte("junk"))} }, "junk.crl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cert.DefaultConfig()
			cfg.ClientCAFile, cfg.CRLFiles = caFile, []string{crlFile}
			tt.edit(&cfg)
			_, err := cert.NewVerifier(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewVerifier = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestReloadKeepsPreviousCRLOnBadOrOlderFile(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t)
	good := f.ca.issue(t, leafOpts{})
	cs := tls.ConnectionState{PeerCertificates: []*x509Certificate{good.Leaf}}
	if _, ok := v.Identity(cs); !ok {
		t.Fatal("good certificate not accepted")
	}
	older := f.ca.crl(t, t0.Add(-48*time.Hour), 30*24*time.Hour, good) // revokes, but issued earlier
	newest := f.ca.crl(t, t0, 7*24*time.Hour)

	writeFile(t, f.dir, "ca.crl", newest)
	if err := v.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	writeFile(t, f.dir, "ca.crl", []byte("truncated"))
	if err := v.Reload(); err == nil {
		t.Fatal("Reload of a corrupt CRL reported no error")
	}
	if _, ok := v.Identity(cs); !ok {
		t.Fatal("a corrupt CRL file dropped the CRL already loaded")
	}
	writeFile(t, f.dir, "ca.crl", older)
	if err := v.Reload(); err == nil || !strings.Contains(err.Error(), "rollback") {
		t.Fatalf("Reload of an older CRL = %v, want a rollback error", err)
	}
	if _, ok := v.Identity(cs); !ok {
		t.Fatal("an older CRL replaced a newer one")
	}
}

func TestIntermediateNeedsItsOwnCRL(t *testing.T) {
	root := newCA(t, "Root CA")
	issuing := root.subCA(t, "Issuing CA")
	dir := t.TempDir()
	leaf := issuing.issue(t, leafOpts{})
	cs := tls.ConnectionState{PeerCertificates: []*x509Certificate{leaf.Leaf}}
	cfg := cert.DefaultConfig()
	cfg.ClientCAFile = writeFile(t, dir, "bundle.pem", certPEM(root.cert, issuing.cert))
	cfg.CRLFiles = []string{writeFile(t, dir, "root.crl", root.crl(t, t0, 30*24*time.Hour))}
	v, err := cert.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = func() time.Time { return t0 }
	if _, ok := v.Identity(cs); ok {
		t.Fatal("accepted a certificate whose issuing CA has no CRL")
	}

	cfg.CRLFiles = append(cfg.CRLFiles, writeFile(t, dir, "issuing.crl", issuing.crl(t, t0, 7*24*time.Hour)))
	if v, err = cert.NewVerifier(cfg); err != nil {
		t.Fatal(err)
	}
	v.Now = func() time.Time { return t0 }
	if _, ok := v.Identity(cs); !ok {
		t.Fatal("rejected a good certificate with both CRLs loaded")
	}

	// The root revoking the intermediate revokes everything under it.
	writeFile(t, dir, "root.crl", root.crl(t, t0, 30*24*time.Hour, tlsCert(issuing.cert)))
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Identity(cs); ok {
		t.Fatal("accepted a certificate under a revoked intermediate")
	}
}
