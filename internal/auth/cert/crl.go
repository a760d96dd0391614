package cert

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// maxCRLBytes bounds one CRL file.
const maxCRLBytes = 64 << 20

// crlEntry is one CA's current CRL with its revoked serials indexed.
type crlEntry struct {
	file    string
	ca      *x509.Certificate
	list    *x509.RevocationList
	revoked map[string]bool // serial in hex
}

// crlSet maps a CA (SHA-256 of its DER) to its CRL.
type crlSet map[[32]byte]*crlEntry

// Reload re-reads the CRL files. A file that cannot be read, does not parse,
// is not signed by a CA in the bundle, or is older than the CRL already held
// for its CA, is ignored (the CRL held before stays in force until it goes
// stale) and reported in the returned error, which the caller should log as
// an alert.
func (v *Verifier) Reload() error {
	v.reloadMu.Lock()
	defer v.reloadMu.Unlock()
	old := v.crls.Load()
	next := crlSet{}
	var errs []error
	for _, f := range v.cfg.CRLFiles {
		e, err := v.loadCRL(f)
		if err != nil {
			errs = append(errs, err)
			for k, oe := range *old {
				if oe.file == f {
					next[k] = oe
				}
			}
			continue
		}
		k := sha256.Sum256(e.ca.Raw)
		if cur, ok := next[k]; ok && !newer(e.list, cur.list) {
			continue // two files for one CA: keep the newer
		}
		if prev, ok := (*old)[k]; ok && newer(prev.list, e.list) {
			errs = append(errs, fmt.Errorf("CRL %s: older than the CRL already loaded for %s (rollback refused)", f, e.ca.Subject))
			next[k] = prev
			continue
		}
		next[k] = e
	}
	v.crls.Store(&next)
	if len(errs) > 0 {
		return fmt.Errorf("reload CRLs: %w", errors.Join(errs...))
	}
	return nil
}

// newer reports whether a was issued after b.
func newer(a, b *x509.RevocationList) bool {
	if a.Number != nil && b.Number != nil {
		if c := a.Number.Cmp(b.Number); c != 0 {
			return c > 0
		}
	}
	return a.ThisUpdate.After(b.ThisUpdate)
}

func (v *Verifier) loadCRL(file string) (*crlEntry, error) {
	data, err := readLimited(file, maxCRLBytes)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", file, err)
	}
	der := data
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("CRL %s: PEM block is %q, want \"X509 CRL\"", file, b.Type)
		}
		der = b.Bytes
	}
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", file, err)
	}
	var signer *x509.Certificate
	for _, ca := range v.cas {
		if bytes.Equal(list.RawIssuer, ca.RawSubject) && list.CheckSignatureFrom(ca) == nil {
			signer = ca
			break
		}
	}
	if signer == nil {
		return nil, fmt.Errorf("CRL %s: issuer %q is not a CA in %s, or the signature does not verify", file, list.Issuer, v.cfg.ClientCAFile)
	}
	e := &crlEntry{file: file, ca: signer, list: list, revoked: make(map[string]bool, len(list.RevokedCertificateEntries))}
	for _, r := range list.RevokedCertificateEntries {
		e.revoked[r.SerialNumber.Text(16)] = true
	}
	return e, nil
}

// stale explains why the CRL may not be relied on at now, or returns nil.
func (e *crlEntry) stale(now time.Time, maxAge time.Duration) error {
	l := e.list
	switch {
	case !l.NextUpdate.IsZero() && now.After(l.NextUpdate):
		return fmt.Errorf("CRL for %s is stale: nextUpdate %s has passed", e.ca.Subject, l.NextUpdate.UTC().Format(time.RFC3339))
	case maxAge > 0 && now.Sub(l.ThisUpdate) > maxAge:
		return fmt.Errorf("CRL for %s is stale: thisUpdate %s is older than CRLMaxAge %v", e.ca.Subject, l.ThisUpdate.UTC().Format(time.RFC3339), maxAge)
	case l.NextUpdate.IsZero() && maxAge <= 0:
		return fmt.Errorf("CRL for %s has no nextUpdate and CRLMaxAge is not set, so its freshness is unknown", e.ca.Subject)
	}
	return nil
}

func readLimited(file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("file exceeds %d bytes", limit)
	}
	return data, nil
}
