package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
)

// serverWithLeaf serves /v1/time over TLS with a leaf for the given names,
// signed by a fresh CA; it returns the server and the CA's DER bytes.
func serverWithLeaf(t *testing.T, dns []string, ips []net.IP) (*httptest.Server, []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pin CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dns, IPAddresses: ips, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"unix":1764250000}`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, caDER
}

// The pinned client checks the server's name even when the URL holds an IP
// address (the TLS state then carries no server name of its own).
func TestPinnedClientChecksIPAddressNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		dns  []string
		ips  []net.IP
		ok   bool
	}{
		{"leaf for 127.0.0.1", nil, []net.IP{net.ParseIP("127.0.0.1")}, true},
		{"leaf for another name only", []string{"imprint.example"}, nil, false},
		{"leaf for another IP", nil, []net.IP{net.ParseIP("10.0.2.2")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, caDER := serverWithLeaf(t, tc.dns, tc.ips)
			if !strings.Contains(srv.URL, "127.0.0.1") {
				t.Fatalf("test server URL %s is not an IP URL", srv.URL)
			}
			m, err := client.NewMachinePinned(srv.URL, sum(caDER))
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Time(context.Background())
			if tc.ok && err != nil {
				t.Fatalf("right name refused: %v", err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "pinned CA")) {
				t.Fatalf("wrong name: err = %v, want a refusal", err)
			}
		})
	}
}

// A pinned client learns the CA certificate from the chain it checked
// (the boot image stages it for Windows); it has none before connecting.
func TestPinnedClientCACertPEM(t *testing.T) {
	srv, caDER := serverWithLeaf(t, nil, []net.IP{net.ParseIP("127.0.0.1")})
	m, err := client.NewMachinePinned(srv.URL, sum(caDER))
	if err != nil {
		t.Fatal(err)
	}
	if p := m.CACertPEM(); len(p) != 0 {
		t.Errorf("CA before any connection: %q", p)
	}
	if _, err := m.Time(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if got := m.CACertPEM(); !bytes.Equal(got, want) {
		t.Errorf("CACertPEM = %q, want the pinned CA %q", got, want)
	}
	byPEM, err := client.NewMachine(srv.URL, want)
	if err != nil {
		t.Fatal(err)
	}
	if got := byPEM.CACertPEM(); !bytes.Equal(got, want) {
		t.Errorf("NewMachine's CACertPEM = %q", got)
	}
}
