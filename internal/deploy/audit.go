package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// AuditHash returns the chain hash of e given the previous entry's hash:
// hex(SHA-256(prev || canonical JSON of e with Hash empty and PrevHash = prev)).
// Stores use it on append; `imprint audit verify` recomputes it.
func AuditHash(prev string, e *AuditEvent) string {
	c := *e
	c.Hash = ""
	c.PrevHash = prev
	c.Time = c.Time.UTC().Round(time.Microsecond)
	b, _ := json.Marshal(c) // map keys are sorted by encoding/json: canonical enough
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}
