// Package accesstoken is the server's check of Microsoft Entra ID access
// tokens. [Validator] checks an RS256 access token against the configured
// tenant ([entra.Config]) — signature by a key from the tenant's JWKS
// (cached, with a minimum interval between refetches), issuer pinned to the
// tenant's v2.0 issuer, audience, expiry, tenant id and the required app
// role — and returns the caller's [Identity] for the audit log. The server
// then mints its own session; Entra tokens are neither stored nor logged.
//
// The agent's side (the device-code flow) is package entra, which does not
// import this one, so imprint-agent does not link JWT validation.
package accesstoken
