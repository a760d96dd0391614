package auth

import (
	"crypto/rand"
	"fmt"
)

// randomBytes returns n bytes from crypto/rand. crypto/rand.Read never
// returns an error on supported platforms (it crashes the program rather
// than return weak bytes), so none is passed on.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newID returns a random (version 4) UUID for a session.
func newID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
