package cert

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config configures client-certificate authentication.
type Config struct {
	// ClientCAFile is a PEM bundle of the CAs that issue client
	// certificates (issuing CAs, intermediates and roots). Only these are
	// trusted, never the system roots.
	ClientCAFile string
	// RequireEKUClientAuth requires the leaf to list the clientAuth extended
	// key usage explicitly. When false, a leaf with no EKU extension is
	// accepted too (x509 treats that as any usage). A leaf whose EKUs exclude
	// clientAuth is always refused. DefaultConfig sets it.
	RequireEKUClientAuth bool
	// SubjectPattern, when set, is a regular expression that must match the
	// whole subject DN (as in "CN=pc-01,O=Contoso") or the whole of one SAN
	// (DNS name, URI, e-mail address or IP address). It is anchored: the
	// pattern "pc-\d+" does not match "CN=pc-1,O=x".
	SubjectPattern string
	// CRLFiles are the CRLs (PEM or DER) of the CAs in the bundle; each must
	// be signed by a CA in the bundle. At least one is required.
	CRLFiles []string
	// CRLMaxAge, when positive, also treats a CRL as stale once its
	// thisUpdate is older than this, even before its nextUpdate.
	CRLMaxAge time.Duration
}

// DefaultConfig returns the defaults: the clientAuth EKU is required.
func DefaultConfig() Config { return Config{RequireEKUClientAuth: true} }

// Validate reports every missing or malformed field by name.
func (c Config) Validate() error {
	var errs []error
	if c.ClientCAFile == "" {
		errs = append(errs, errors.New("ClientCAFile: required (PEM bundle of the client-issuing CAs)"))
	}
	if len(c.CRLFiles) == 0 {
		errs = append(errs, errors.New("CRLFiles: at least one CRL is required; revocation is checked and fails closed"))
	}
	for i, f := range c.CRLFiles {
		if f == "" {
			errs = append(errs, fmt.Errorf("CRLFiles[%d]: empty path", i))
		}
	}
	if c.CRLMaxAge < 0 {
		errs = append(errs, fmt.Errorf("CRLMaxAge: %v is negative", c.CRLMaxAge))
	}
	if c.SubjectPattern != "" {
		if _, err := compileSubject(c.SubjectPattern); err != nil {
			errs = append(errs, fmt.Errorf("SubjectPattern: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cert config: %w", errors.Join(errs...))
	}
	return nil
}

func compileSubject(p string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + p + `)$`)
}
