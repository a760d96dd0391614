// Package auth holds the logic of client authentication that is not tied to
// HTTP: the passcode (Argon2id hashing, policy, generation, rotation with
// grace, constant-shape checking with a bounded number of concurrent hash
// evaluations), throttling of failed attempts without lockout, opaque
// session tokens with idle and absolute expiry, and the hash-chained audit
// log. The server wires these into its handlers; Entra ID and certificate
// authentication live in the entra and cert subpackages.
//
// Design notes and the checklist this package implements are in
// spec/security.md (§2, §3) and issue 3.
package auth
