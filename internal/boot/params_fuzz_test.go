package boot

import (
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	fuzzMAC  = regexp.MustCompile(`^[0-9a-f]{2}(-[0-9a-f]{2}){5}$`)
	fuzzUUID = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$`)
	// Stage two's errors go into an iPXE script: they name the parameter
	// and the accepted form, in plain words, and never carry a request
	// value (no quotes, no script syntax such as ${ or newlines).
	fuzzQueryErr = regexp.MustCompile(`^parameter (mac|uuid|arch|platform|serial) (is given \d+ times|must be [a-zA-Z0-9 ,()_-]+)$`)
)

// FuzzParseQuery feeds stage two's raw query string (what any machine on
// the LAN may send to the boot port) through the parser the handler uses.
// Accepted queries are normalised, and normalising again changes nothing;
// refusals are one of the fixed messages that are safe in a script.
// Seeds: testdata/fuzz/FuzzParseQuery.
func FuzzParseQuery(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // r.URL.Query() drops malformed pairs the same way
		m, err := parseQuery(v)
		if err != nil {
			if !fuzzQueryErr.MatchString(err.Error()) {
				t.Fatalf("parseQuery(%q) error %q is not one of the fixed, script-safe messages", raw, err)
			}
			return
		}
		if !fuzzMAC.MatchString(m.MAC) || !fuzzUUID.MatchString(m.UUID) || !validArch(m.Arch) ||
			(m.Platform != "efi" && m.Platform != "pcbios") || len(m.Serial) > 128 {
			t.Fatalf("parseQuery(%q) accepted a value outside its form: %+v", raw, m)
		}
		// Sent again as stage one would (serial in iPXE's :hex form),
		// the normalised query parses to itself.
		again := url.Values{"mac": {m.MAC}, "uuid": {m.UUID}, "arch": {m.Arch}, "platform": {m.Platform}}
		if m.Serial != "" {
			h := hex.EncodeToString([]byte(m.Serial))
			var parts []string
			for i := 0; i < len(h); i += 2 {
				parts = append(parts, h[i:i+2])
			}
			again.Set("serial", strings.Join(parts, ":"))
		}
		m2, err := parseQuery(again)
		if err != nil {
			t.Fatalf("normalised query %v refused: %v", again, err)
		}
		if m2 != m {
			t.Fatalf("normalised query parses differently:\n first %+v\nsecond %+v", m, m2)
		}
	})
}
