// Package tlsca is a server's own PKI under DIR/tls: a CA that agents pin
// (its SHA-256 fingerprint goes on the boot command line) and the
// certificate it signs for the HTTPS port. The server and the branch relay
// each have one.
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/imprint-osd/imprint/internal/atomicfile"
)

// Material is the PKI under DIR/tls: a CA that agents pin and a server
// certificate it signs. Both are generated on first start; the CA key
// never leaves the data directory.
type Material struct {
	CA          *x509.Certificate
	CAPEM       []byte
	Certificate tls.Certificate
}

// Fingerprint is the hex SHA-256 of the CA certificate's DER bytes.
func (m *Material) Fingerprint() string {
	sum := sha256.Sum256(m.CA.Raw)
	return hex.EncodeToString(sum[:])
}

// LoadOrCreate loads DIR/tls or creates it. A server certificate that
// does not cover every host in hosts, or expires within 30 days, is
// re-issued from the existing CA.
func LoadOrCreate(dir string, hosts []string, now time.Time) (*Material, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	caCrt, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	srvCrt, srvKey := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")

	ca, key, err := loadPair(caCrt, caKey)
	if errors.Is(err, os.ErrNotExist) {
		ca, key, err = createCA(caCrt, caKey, now)
	}
	if err != nil {
		return nil, fmt.Errorf("tls: CA: %w", err)
	}
	leaf, leafKey, err := loadPair(srvCrt, srvKey)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tls: server certificate: %w", err)
	}
	if err != nil || !covers(leaf, hosts) || leaf.NotAfter.Before(now.Add(30*24*time.Hour)) ||
		leaf.CheckSignatureFrom(ca) != nil {
		leaf, leafKey, err = createLeaf(srvCrt, srvKey, ca, key, hosts, now)
		if err != nil {
			return nil, fmt.Errorf("tls: server certificate: %w", err)
		}
	}
	caPEM, err := os.ReadFile(caCrt)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &Material{
		CA:    ca,
		CAPEM: caPEM,
		Certificate: tls.Certificate{
			Certificate: [][]byte{leaf.Raw, ca.Raw},
			PrivateKey:  leafKey,
			Leaf:        leaf,
		},
	}, nil
}

func covers(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func loadPair(crtPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	crtPEM, err := os.ReadFile(crtPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(crtPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("%s or %s is not PEM", crtPath, keyPath)
	}
	crt, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", crtPath, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return crt, key, nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func createCA(crtPath, keyPath string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	crt, key, err := newCA(now)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(crtPath, keyPath, crt.Raw, key); err != nil {
		return nil, nil, err
	}
	return crt, key, nil
}

func newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "Imprint CA " + host, Organization: []string{"Imprint"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	crt, err := x509.ParseCertificate(der)
	return crt, key, err
}

// CA is a CA certificate and its private key, both PEM: what replicas
// on one database share (the server keeps it in the database) so that
// every one presents a certificate from the CA the machines pin.
type CA struct {
	Cert []byte `json:"cert"`
	Key  []byte `json:"key"`
}

// NewCA makes a CA as the first start does, without writing it.
func NewCA(now time.Time) (CA, error) {
	crt, key, err := newCA(now)
	if err != nil {
		return CA{}, fmt.Errorf("tls: CA: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return CA{}, fmt.Errorf("tls: CA: %w", err)
	}
	return CA{Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crt.Raw}),
		Key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})}, nil
}

// ReadCA reads DIR/ca.crt and DIR/ca.key; an error wrapping
// os.ErrNotExist when there is none yet.
func ReadCA(dir string) (CA, error) {
	crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if _, _, err := loadPair(crt, key); err != nil {
		return CA{}, fmt.Errorf("tls: CA: %w", err)
	}
	var ca CA
	var err1, err2 error
	ca.Cert, err1 = os.ReadFile(crt)
	ca.Key, err2 = os.ReadFile(key)
	if err := errors.Join(err1, err2); err != nil {
		return CA{}, fmt.Errorf("tls: CA: %w", err)
	}
	return ca, nil
}

// WriteCA installs ca as DIR's CA (creating DIR), each file atomically,
// the key 0600; LoadOrCreate then issues the server certificate from it.
// A ca that does not parse, or whose key is not the certificate's, is
// refused and nothing is written.
func WriteCA(dir string, ca CA) error {
	cb, _ := pem.Decode(ca.Cert)
	kb, _ := pem.Decode(ca.Key)
	if cb == nil || kb == nil {
		return errors.New("tls: CA: certificate or key is not PEM")
	}
	crt, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return fmt.Errorf("tls: CA: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return fmt.Errorf("tls: CA: %w", err)
	}
	if !key.PublicKey.Equal(crt.PublicKey) {
		return errors.New("tls: CA: the key is not the certificate's")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := writePair(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), crt.Raw, key); err != nil {
		return fmt.Errorf("tls: CA: %w", err)
	}
	return nil
}

func createLeaf(crtPath, keyPath string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"Imprint"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(crtPath, keyPath, der, key); err != nil {
		return nil, nil, err
	}
	crt, err := x509.ParseCertificate(der)
	return crt, key, err
}

// writePair writes the key (0600) and then the certificate, each atomically.
func writePair(crtPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}
