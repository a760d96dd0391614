package winacl_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/imprint-osd/imprint/internal/winacl"
)

func TestSID(t *testing.T) {
	tests := []struct {
		sid, hex string
	}{
		// [MS-DTYP] 2.4.2.2: revision, count, authority (big-endian),
		// sub-authorities (little-endian).
		{winacl.System, "010100000000000512000000"},
		{winacl.Administrators, "01020000000000052000000020020000"},
		{"S-1-1-0", "010100000000000100000000"},
	}
	for _, tt := range tests {
		b, err := winacl.SID(tt.sid)
		if err != nil {
			t.Fatalf("SID(%s): %v", tt.sid, err)
		}
		if got := hex.EncodeToString(b); got != tt.hex {
			t.Errorf("SID(%s) = %s, want %s", tt.sid, got, tt.hex)
		}
	}
	for _, bad := range []string{"", "S-1", "X-1-5-18", "S-2-5-18", "S-1-5-x", "S-1-5-99999999999"} {
		if _, err := winacl.SID(bad); err == nil {
			t.Errorf("SID(%q): no error", bad)
		}
	}
}

func TestPrivateLayout(t *testing.T) {
	for _, dir := range []bool{true, false} {
		sd := winacl.Private(dir)
		// Control: self-relative, DACL present, DACL protected.
		if sd[0] != 1 || sd[2] != 0x04 || sd[3] != 0x90 {
			t.Errorf("dir %v: header % x", dir, sd[:4])
		}
		sys, _ := winacl.SID(winacl.System)
		admins, _ := winacl.SID(winacl.Administrators)
		if bytes.Count(sd, sys) != 3 || bytes.Count(sd, admins) != 1 {
			t.Errorf("dir %v: SIDs in % x", dir, sd)
		}
		if len(sd) != 20+8+2*8+len(sys)+len(admins)+2*len(sys) {
			t.Errorf("dir %v: %d bytes", dir, len(sd))
		}
	}
}
