package auth

import (
	"encoding/base64"
	"testing"
)

// FuzzBearerToken feeds any Authorization token to the check every API
// request of a machine meets before the store is asked. An accepted token
// is exactly what NewToken makes: 32 bytes in canonical base64url, so one
// session has one spelling and nothing else reaches the lookup.
// Seeds: testdata/fuzz/FuzzBearerToken.
func FuzzBearerToken(f *testing.F) {
	f.Fuzz(func(t *testing.T, token string) {
		if !wellFormedToken(token) {
			return
		}
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(b) != tokenBytes {
			t.Fatalf("accepted %q: %d bytes, %v", token, len(b), err)
		}
		if again := base64.RawURLEncoding.EncodeToString(b); again != token {
			t.Fatalf("accepted %q, whose canonical form is %q", token, again)
		}
	})
}
