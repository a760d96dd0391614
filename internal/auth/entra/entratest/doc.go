// Package entratest is a fake Microsoft Entra ID issuer for offline tests:
// a tenant's JWKS (with key rotation and an outage switch), the device-code
// and token endpoints with a scriptable state machine, and helpers that mint
// good and deliberately bad access tokens.
package entratest
