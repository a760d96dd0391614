package entra

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// DefaultAuthority is the Microsoft identity platform's public-cloud host.
const DefaultAuthority = "https://login.microsoftonline.com"

// DefaultMinRefetch is the default minimum interval between JWKS refetches
// triggered by an unknown key id.
const DefaultMinRefetch = 5 * time.Minute

// Config describes one Entra ID tenant and the app registration of our API.
type Config struct {
	// TenantID is the directory (tenant) id, a GUID. Domain names and the
	// multi-tenant aliases "common"/"organizations" are refused because the
	// issuer must be pinned to one tenant.
	TenantID string
	// ClientID is the application (client) id of the app registration. The
	// agent uses it for the device-code flow.
	ClientID string
	// Audience is the accepted "aud" of access tokens. Empty means ClientID,
	// which is what v2.0 access tokens for our own API carry.
	Audience string
	// RequiredRole, when set, must be one of the token's app roles.
	RequiredRole string
	// Authority is the identity platform's base URL; empty means
	// DefaultAuthority. Tests point it at a fake issuer.
	Authority string
	// MinRefetch is the minimum interval between JWKS fetches; zero means
	// DefaultMinRefetch.
	MinRefetch time.Duration
}

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Validate reports every missing or malformed field by name.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.TenantID == "":
		errs = append(errs, errors.New("TenantID: required (the directory id, a GUID)"))
	case !guidRe.MatchString(c.TenantID):
		errs = append(errs, fmt.Errorf("TenantID: %q is not a GUID; use the directory (tenant) id, not a domain name or common/organizations", c.TenantID))
	}
	switch {
	case c.ClientID == "":
		errs = append(errs, errors.New("ClientID: required (the application id of the app registration)"))
	case strings.ContainsAny(c.ClientID, " /?#&"):
		errs = append(errs, fmt.Errorf("ClientID: %q contains characters not allowed in an application id", c.ClientID))
	}
	if c.Authority != "" {
		u, err := url.Parse(c.Authority)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("Authority: %q is not an http(s) base URL", c.Authority))
		}
	}
	if c.MinRefetch < 0 {
		errs = append(errs, fmt.Errorf("MinRefetch: %v is negative", c.MinRefetch))
	}
	if len(errs) > 0 {
		return fmt.Errorf("entra config: %w", errors.Join(errs...))
	}
	return nil
}

func (c Config) authority() string {
	if c.Authority == "" {
		return DefaultAuthority
	}
	return strings.TrimRight(c.Authority, "/")
}

// Tenant is the tenant id as it appears in issuers and tid claims: lower case.
func (c Config) Tenant() string { return strings.ToLower(c.TenantID) }

// AcceptedAudience is the "aud" access tokens must carry: Audience, or
// ClientID when it is empty.
func (c Config) AcceptedAudience() string {
	if c.Audience == "" {
		return c.ClientID
	}
	return c.Audience
}

// RefetchInterval is MinRefetch, or DefaultMinRefetch when it is zero.
func (c Config) RefetchInterval() time.Duration {
	if c.MinRefetch == 0 {
		return DefaultMinRefetch
	}
	return c.MinRefetch
}

// Issuer is the only accepted "iss": {authority}/{tenant}/v2.0.
func (c Config) Issuer() string { return c.authority() + "/" + c.Tenant() + "/v2.0" }

// JWKSURL is the tenant's signing-key document.
func (c Config) JWKSURL() string { return c.authority() + "/" + c.Tenant() + "/discovery/v2.0/keys" }

// DeviceCodeURL is the tenant's device authorization endpoint.
func (c Config) DeviceCodeURL() string {
	return c.authority() + "/" + c.Tenant() + "/oauth2/v2.0/devicecode"
}

// TokenURL is the tenant's token endpoint.
func (c Config) TokenURL() string { return c.authority() + "/" + c.Tenant() + "/oauth2/v2.0/token" }
