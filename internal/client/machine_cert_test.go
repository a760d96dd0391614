package client_test

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
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// issue makes a CA (when parent is nil) or a client certificate signed by
// parent.
func issue(t *testing.T, cn string, parent *tls.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	signer, signKey := tmpl, any(key)
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		signer, signKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// mtlsServer asks for a client certificate from ca and answers
// /v1/auth/methods with the presented certificate's CN in the hint.
func mtlsServer(t *testing.T, ca tls.Certificate) *httptest.Server {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Leaf)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hint := "no certificate"
		if len(r.TLS.PeerCertificates) > 0 {
			hint = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		json.NewEncoder(w).Encode(client.AuthMethods{Methods: []string{"certificate"}, Hint: hint})
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestMachinePresentsClientCertificate(t *testing.T) {
	ca := issue(t, "Device CA", nil)
	srv := mtlsServer(t, ca)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	fp := sha256.Sum256(srv.Certificate().Raw)
	good := issue(t, "pc-01", &ca)
	stranger := issue(t, "pc-01", ptr(issue(t, "Other CA", nil)))

	ctx := context.Background()
	dial := map[string]func(...client.MachineOption) (*client.Machine, error){
		"ca file": func(o ...client.MachineOption) (*client.Machine, error) {
			return client.NewMachine(srv.URL, caPEM, o...)
		},
		"pinned": func(o ...client.MachineOption) (*client.Machine, error) {
			return client.NewMachinePinned(srv.URL, hex.EncodeToString(fp[:]), o...)
		},
	}
	for name, newM := range dial {
		t.Run(name, func(t *testing.T) {
			tests := []struct {
				name     string
				opts     []client.MachineOption
				wantHint string
				wantKind deploy.Kind
				wantMsg  string
			}{
				{"without", nil, "no certificate", "", ""},
				{"good", []client.MachineOption{client.WithClientCert(good)}, "pc-01", "", ""},
				{"other CA", []client.MachineOption{client.WithClientCert(stranger)}, "", deploy.KindUnauthorized, "refused the client certificate"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					m, err := newM(tc.opts...)
					if err != nil {
						t.Fatal(err)
					}
					if m.HasClientCert() != (len(tc.opts) > 0) {
						t.Errorf("HasClientCert = %v", m.HasClientCert())
					}
					am, err := m.AuthMethods(ctx)
					if tc.wantKind != "" {
						if deploy.ErrorKind(err) != tc.wantKind || !strings.Contains(err.Error(), tc.wantMsg) {
							t.Fatalf("err = %v (kind %s), want %s containing %q", err, deploy.ErrorKind(err), tc.wantKind, tc.wantMsg)
						}
						return
					}
					if err != nil || am.Hint != tc.wantHint {
						t.Fatalf("AuthMethods = %+v, %v; want the server to see %q", am, err, tc.wantHint)
					}
				})
			}
		})
	}
	if _, err := client.NewMachine(srv.URL, caPEM, client.WithClientCert(tls.Certificate{})); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("empty client certificate: err = %v, want invalid", err)
	}
}

func ptr[T any](v T) *T { return &v }
