package winboot

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// GUID is a GUID in Windows byte order (Data1, Data2 and Data3
// little-endian, Data4 as is): the order the GPT stores on disk and the
// BCD device elements and EFI device paths use, so bytes read from a GPT
// are copied unchanged.
type GUID [16]byte

// String gives the lowercase braced form, {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}.
func (g GUID) String() string {
	le := binary.LittleEndian
	return fmt.Sprintf("{%08x-%04x-%04x-%s-%s}", le.Uint32(g[0:]), le.Uint16(g[4:]), le.Uint16(g[6:]),
		hex.EncodeToString(g[8:10]), hex.EncodeToString(g[10:16]))
}

// IsZero reports whether g is all zeros.
func (g GUID) IsZero() bool { return g == GUID{} }

// ParseGUID parses the text form, with or without braces.
func ParseGUID(s string) (GUID, error) {
	t := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}")
	parts := strings.Split(t, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return GUID{}, fmt.Errorf("%q is not a GUID", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return GUID{}, fmt.Errorf("%q is not a GUID", s)
	}
	var g GUID
	le, be := binary.LittleEndian, binary.BigEndian
	le.PutUint32(g[0:], be.Uint32(raw[0:]))
	le.PutUint16(g[4:], be.Uint16(raw[4:]))
	le.PutUint16(g[6:], be.Uint16(raw[6:]))
	copy(g[8:], raw[8:])
	return g, nil
}

// mustGUID is for the well-known constants below.
func mustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// NewGUID returns a random (version 4) GUID read from r (crypto/rand when nil).
func NewGUID(r io.Reader) (GUID, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return GUID{}, fmt.Errorf("random guid: %w", err)
	}
	b[7] = b[7]&0x0f | 0x40 // version 4 (high nibble of Data3, stored little-endian)
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return GUID(b), nil
}

// FileTime converts t to a Windows FILETIME (100 ns since 1601), the time
// stamp of registry keys.
func FileTime(t time.Time) uint64 {
	const epochDiff = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns
	return uint64(t.UnixNano()/100) + epochDiff
}
