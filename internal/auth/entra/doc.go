// Package entra authenticates clients with Microsoft Entra ID access tokens.
//
// The server side is [Validator]: it checks an RS256 access token against the
// configured tenant — signature by a key from the tenant's JWKS (cached, with a
// minimum interval between refetches), issuer pinned to the tenant's v2.0
// issuer, audience, expiry, tenant id and the required app role — and returns
// the caller's [Identity] for the audit log. The server then mints its own
// session; Entra tokens are neither stored nor logged.
//
// The agent side is the OAuth 2.0 device authorization grant (RFC 8628):
// [StartDeviceCode] obtains a user code to show on the boot console, and
// [DeviceCode.Poll] waits for the technician to sign in on another device.
//
// Only v2.0 tokens are accepted: the API's app registration must set
// "requestedAccessTokenVersion": 2, and v1 issuers (https://sts.windows.net/…)
// are refused so that one issuer is pinned, as security.md EN-1 asks.
//
// Package entratest holds a fake Entra issuer for offline tests.
package entra
