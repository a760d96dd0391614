package pe_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/pe"
)

type keyCert struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func (k keyCert) fingerprint() string {
	s := sha256.Sum256(k.cert.Raw)
	return hex.EncodeToString(s[:])
}

var serial int64

// newCert makes a certificate valid from nb to na; parent nil means
// self-signed. A CA when isCA; otherwise a server certificate for names
// (IP addresses or DNS names).
func newCert(t *testing.T, cn string, nb, na time.Time, isCA bool, parent *keyCert, names ...string) keyCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: nb, NotAfter: na, BasicConstraintsValid: true, IsCA: isCA,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return keyCert{key, c}
}

// timeServer serves /v1/time over TLS presenting chain (leaf first).
func timeServer(t *testing.T, leaf keyCert, chain ...*x509.Certificate) string {
	t.Helper()
	cert := tls.Certificate{Certificate: [][]byte{leaf.cert.Raw}, PrivateKey: leaf.key}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/time" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"unix":1900000000}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPinnedTimeClient(t *testing.T) {
	y := func(year int) time.Time { return time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC) }
	// An expired CA and server certificate: the machine's clock says
	// "now", the certificates ended in 2021. A date check would refuse.
	ca := newCert(t, "Imprint CA", y(2019), y(2021), true, nil)
	leaf := newCert(t, "imprint", y(2020), y(2021), false, &ca, "127.0.0.1")
	wrongName := newCert(t, "imprint", y(2020), y(2021), false, &ca, "other.example")
	otherCA := newCert(t, "Attacker CA", y(2019), y(2040), true, nil)
	forged := newCert(t, "imprint", y(2020), y(2040), false, &otherCA, "127.0.0.1")
	laterLeaf := newCert(t, "imprint", y(2030), y(2031), false, &ca, "127.0.0.1")
	selfSigned := newCert(t, "self", y(2020), y(2021), false, nil, "127.0.0.1")

	tests := map[string]struct {
		url     string
		pin     string
		wantErr string
	}{
		"expired chain, pin verified":         {url: timeServer(t, leaf, ca.cert), pin: strings.ToUpper(ca.fingerprint())},
		"self-signed leaf pinned":             {url: timeServer(t, selfSigned), pin: selfSigned.fingerprint()},
		"wrong pin":                           {url: timeServer(t, leaf, ca.cert), pin: otherCA.fingerprint(), wantErr: "no certificate of the server's chain has the pinned CA fingerprint"},
		"malformed pin":                       {url: timeServer(t, leaf, ca.cert), pin: "abcd", wantErr: "not a SHA-256"},
		"pinned CA sent beside a forged leaf": {url: timeServer(t, forged, ca.cert), pin: ca.fingerprint(), wantErr: "does not verify against the pinned CA"},
		"wrong host name":                     {url: timeServer(t, wrongName, ca.cert), pin: ca.fingerprint(), wantErr: "127.0.0.1"},
		"validity never overlaps":             {url: timeServer(t, laterLeaf, ca.cert), pin: ca.fingerprint(), wantErr: "never valid at the same time"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := pe.FetchServerTime(context.Background(), pe.PinnedTimeClient(tt.pin), tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Unix(1900000000, 0); !got.Equal(want) {
				t.Errorf("time = %v, want %v", got, want)
			}
		})
	}

	// The same expired chain is refused by a client that checks dates:
	// the test above really exercised the date bypass.
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	strict := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := pe.FetchServerTime(context.Background(), strict, timeServer(t, leaf, ca.cert)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("strict client err = %v, want a certificate-expired error", err)
	}
}

func TestPinnedSelfSignedWrongName(t *testing.T) {
	y := func(year int) time.Time { return time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC) }
	s := newCert(t, "s", y(2020), y(2021), false, nil, "x.example")
	_, err := pe.FetchServerTime(context.Background(), pe.PinnedTimeClient(s.fingerprint()), timeServer(t, s))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("err = %v, want a host name error", err)
	}
}

func TestFetchServerTimeBadAnswers(t *testing.T) {
	tests := map[string]struct {
		status  int
		body    string
		wantErr string
	}{
		"not found": {http.StatusNotFound, `{}`, "404"},
		"no unix":   {http.StatusOK, `{"time":1}`, `has no "unix" seconds`},
		"not json":  {http.StatusOK, `<html>`, `has no "unix" seconds`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			_, err := pe.FetchServerTime(context.Background(), srv.Client(), srv.URL)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
