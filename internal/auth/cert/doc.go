// Package cert authenticates clients by TLS client certificate (mutual TLS).
//
// A [Verifier] holds the client-CA bundle and the CAs' CRLs. Its
// [Verifier.TLSConfig] asks for a client certificate on the shared API port
// (VerifyClientCertIfGiven: clients without one go on to other modes) and
// checks every presented certificate in VerifyConnection, which Go runs on
// resumed sessions too: chain to the bundle, clientAuth EKU, the subject
// rule, and revocation. Revocation fails closed: a certificate is refused
// when the CRL of any CA on its chain (below the root) is missing or stale.
// An invalid certificate fails the handshake; it never falls back to another
// mode.
//
// Intermediate CAs belong in the bundle, each with its CRL. A bundle CA that
// was issued by another bundle CA is treated as an intermediate, not a trust
// anchor, so the parent's CRL (which covers it) is required as well. Delta CRLs and OCSP are not
// supported; CRL files are re-read by [Verifier.Reload].
package cert
