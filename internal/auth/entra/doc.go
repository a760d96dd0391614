// Package entra holds the Entra ID tenant settings ([Config]) and the
// agent's side of Entra ID sign-in: the OAuth 2.0 device authorization
// grant (RFC 8628). [StartDeviceCode] obtains a user code to show on the
// boot console, and [DeviceCode.Poll] waits for the technician to sign in
// on another device.
//
// The server's side, checking the access token the agent then presents,
// is package accesstoken: it is kept apart so that imprint-agent does not
// link JWT validation (a test in cmd/imprint-agent checks it).
//
// Only v2.0 tokens are accepted: the API's app registration must set
// "requestedAccessTokenVersion": 2, and v1 issuers (https://sts.windows.net/…)
// are refused so that one issuer is pinned, as security.md EN-1 asks.
//
// Package entratest holds a fake Entra issuer for offline tests.
package entra
