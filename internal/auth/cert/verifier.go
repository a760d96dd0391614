package cert

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxChain bounds the certificates a client may present.
const maxChain = 8

// maxCABytes bounds the CA bundle file.
const maxCABytes = 16 << 20

// Identity is the verified client certificate, for the handler and the audit
// log.
type Identity struct {
	Subject        string // DN of the leaf
	Issuer         string // DN of the leaf's issuer
	Serial         string // lower-case hex
	Fingerprint    string // SHA-256 of the leaf's DER, lower-case hex
	DNSNames       []string
	URIs           []string
	EmailAddresses []string
	NotAfter       time.Time
}

// Verifier checks client certificates. It is safe for concurrent use.
type Verifier struct {
	// Now is the clock for validity periods and CRL freshness.
	Now func() time.Time
	// OnReject, when set, is called with every certificate refused in
	// VerifyConnection (for the audit log and alerts).
	OnReject func(cs tls.ConnectionState, err error)

	cfg      Config
	cas      []*x509.Certificate
	roots    *x509.CertPool // the whole bundle: what the TLS stack checks against
	anchors  *x509.CertPool // bundle CAs not issued by another bundle CA
	inters   []*x509.Certificate
	subject  *regexp.Regexp
	reloadMu sync.Mutex
	crls     atomic.Pointer[crlSet]
}

// NewVerifier loads the CA bundle and the CRLs named by cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{Now: time.Now, cfg: cfg, roots: x509.NewCertPool()}
	if cfg.SubjectPattern != "" {
		v.subject, _ = compileSubject(cfg.SubjectPattern) // checked by Validate
	}
	cas, err := loadCAs(cfg.ClientCAFile)
	if err != nil {
		return nil, err
	}
	v.cas = cas
	v.anchors = x509.NewCertPool()
	for _, ca := range cas {
		v.roots.AddCert(ca)
		if issuedWithin(ca, cas) {
			v.inters = append(v.inters, ca)
		} else {
			v.anchors.AddCert(ca)
		}
	}
	v.crls.Store(&crlSet{})
	if err := v.Reload(); err != nil {
		return nil, fmt.Errorf("new cert verifier: %w", err)
	}
	return v, nil
}

func loadCAs(file string) ([]*x509.Certificate, error) {
	data, err := readLimited(file, maxCABytes)
	if err != nil {
		return nil, fmt.Errorf("ClientCAFile %s: %w", file, err)
	}
	var cas []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("ClientCAFile %s: PEM block %d is %q, want CERTIFICATE", file, n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ClientCAFile %s: certificate %d: %w", file, n, err)
		}
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("ClientCAFile %s: certificate %d (%s) is not a CA certificate", file, n, c.Subject)
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("ClientCAFile %s: no PEM certificates found", file)
	}
	return cas, nil
}

// issuedWithin reports whether c (not self-signed) was issued by another CA
// in cas.
func issuedWithin(c *x509.Certificate, cas []*x509.Certificate) bool {
	for _, p := range cas {
		if p != c && bytes.Equal(c.RawIssuer, p.RawSubject) && c.CheckSignatureFrom(p) == nil {
			return true
		}
	}
	return false
}

// TLSConfig returns a clone of base (nil means an empty config) that asks
// for, and when given verifies, a client certificate. Clients without one
// complete the handshake and can use other modes. The verifier's Now is the
// TLS clock, and base's own VerifyConnection, if any, runs after ours.
func (v *Verifier) TLSConfig(base *tls.Config) *tls.Config {
	var c *tls.Config
	if base == nil {
		c = &tls.Config{}
	} else {
		c = base.Clone()
	}
	// Request, not verify: crypto/tls's own check would refuse expired,
	// unknown-CA and wrong-EKU certificates before VerifyConnection runs,
	// and OnReject (the audit log) would never see them. verify checks the
	// chain, validity, EKU, subject rule and revocation itself, so nothing
	// is lost; ClientCAs still tells clients which CAs we accept.
	c.ClientAuth = tls.RequestClientCert
	c.ClientCAs = v.roots
	c.Time = v.now
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	next := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) > 0 {
			if _, err := v.verify(cs.PeerCertificates); err != nil {
				if v.OnReject != nil {
					v.OnReject(cs, err)
				}
				return err
			}
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
	return c
}

func (v *Verifier) now() time.Time { return v.Now() }

// Identity returns the client certificate of cs, verified again now (so a
// certificate revoked during a long-lived connection stops working at the
// next request), or false when there is none or it no longer verifies.
func (v *Verifier) Identity(cs tls.ConnectionState) (*Identity, bool) {
	if len(cs.PeerCertificates) == 0 {
		return nil, false
	}
	leaf, err := v.verify(cs.PeerCertificates)
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256(leaf.Raw)
	id := &Identity{
		Subject:        leaf.Subject.String(),
		Issuer:         leaf.Issuer.String(),
		Serial:         leaf.SerialNumber.Text(16),
		Fingerprint:    hex.EncodeToString(sum[:]),
		DNSNames:       leaf.DNSNames,
		EmailAddresses: leaf.EmailAddresses,
		NotAfter:       leaf.NotAfter,
	}
	for _, u := range leaf.URIs {
		id.URIs = append(id.URIs, u.String())
	}
	return id, true
}

// verify checks a presented chain (leaf first) and returns the leaf.
func (v *Verifier) verify(peer []*x509.Certificate) (*x509.Certificate, error) {
	if len(peer) > maxChain {
		return nil, fmt.Errorf("client certificate: chain of %d certificates exceeds %d", len(peer), maxChain)
	}
	leaf := peer[0]
	// Chains end at the top of the bundle, so that an intermediate in the
	// bundle is itself checked against its parent's CRL.
	inter := x509.NewCertPool()
	for _, c := range v.inters {
		inter.AddCert(c)
	}
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	now := v.now()
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.anchors,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("client certificate %s: %w", leaf.Subject, err)
	}
	if v.cfg.RequireEKUClientAuth && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return nil, fmt.Errorf("client certificate %s: does not list the clientAuth extended key usage", leaf.Subject)
	}
	if v.subject != nil && !v.subjectMatches(leaf) {
		return nil, fmt.Errorf("client certificate %s: neither the subject nor a SAN matches SubjectPattern", leaf.Subject)
	}
	crls := *v.crls.Load()
	var errs []error
	for _, chain := range chains {
		err := v.checkRevocation(chain, crls, now)
		if err == nil {
			return leaf, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("client certificate %s: %w", leaf.Subject, errors.Join(errs...))
}

// checkRevocation checks every certificate below the root against its
// issuer's CRL, failing closed when that CRL is missing or stale.
func (v *Verifier) checkRevocation(chain []*x509.Certificate, crls crlSet, now time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		c, issuer := chain[i], chain[i+1]
		e, ok := crls[sha256.Sum256(issuer.Raw)]
		if !ok {
			return fmt.Errorf("no CRL loaded for issuing CA %s (revocation fails closed)", issuer.Subject)
		}
		if err := e.stale(now, v.cfg.CRLMaxAge); err != nil {
			return fmt.Errorf("%w (revocation fails closed)", err)
		}
		if e.revoked[c.SerialNumber.Text(16)] {
			return fmt.Errorf("certificate %s (serial %s) is revoked by %s", c.Subject, c.SerialNumber.Text(16), issuer.Subject)
		}
	}
	return nil
}

func (v *Verifier) subjectMatches(c *x509.Certificate) bool {
	if v.subject.MatchString(c.Subject.String()) {
		return true
	}
	for _, s := range c.DNSNames {
		if v.subject.MatchString(s) {
			return true
		}
	}
	for _, s := range c.EmailAddresses {
		if v.subject.MatchString(s) {
			return true
		}
	}
	for _, u := range c.URIs {
		if v.subject.MatchString(u.String()) {
			return true
		}
	}
	for _, ip := range c.IPAddresses {
		if v.subject.MatchString(ip.String()) {
			return true
		}
	}
	return false
}
