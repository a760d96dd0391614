package boot

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// machineQuery is a validated, normalised stage-two query.
type machineQuery struct {
	MAC      string // lowercase, hyphen-separated: 52-54-00-12-34-56
	UUID     string // lowercase 8-4-4-4-12, or empty when the firmware has none
	Arch     string // x86_64, i386 or arm64
	Platform string // efi or pcbios
	Serial   string // decoded from stage one's hex form, for logs only; never put into a script
}

// parseQuery validates the stage-two query. Its errors name the parameter
// and the accepted form but never repeat the value, so they are safe to put
// into a script.
func parseQuery(q url.Values) (machineQuery, error) {
	var m machineQuery
	get := func(name string) (string, error) {
		switch v := q[name]; len(v) {
		case 0:
			return "", nil
		case 1:
			return v[0], nil
		default:
			return "", fmt.Errorf("parameter %s is given %d times", name, len(v))
		}
	}
	mac, err := get("mac")
	if err != nil {
		return m, err
	}
	if m.MAC, err = normaliseMAC(mac); err != nil {
		return m, err
	}
	uuid, err := get("uuid")
	if err != nil {
		return m, err
	}
	if m.UUID, err = normaliseUUID(uuid); err != nil {
		return m, err
	}
	arch, err := get("arch")
	if err != nil {
		return m, err
	}
	if !validArch(arch) {
		return m, fmt.Errorf("parameter arch must be x86_64, i386 or arm64")
	}
	m.Arch = arch
	platform, err := get("platform")
	if err != nil {
		return m, err
	}
	if platform != "efi" && platform != "pcbios" {
		return m, fmt.Errorf("parameter platform must be efi or pcbios")
	}
	m.Platform = platform
	serial, err := get("serial")
	if err != nil {
		return m, err
	}
	m.Serial = decodeHexSetting(serial)
	if len(m.Serial) > 128 {
		m.Serial = m.Serial[:128]
	}
	return m, nil
}

// decodeHexSetting decodes iPXE's ":hex" form (colon-separated bytes, as
// stage one sends the serial); anything else is returned unchanged.
func decodeHexSetting(s string) string {
	if b, err := hex.DecodeString(strings.ReplaceAll(s, ":", "")); err == nil && len(s) == 3*len(b)-1 {
		return string(b)
	}
	return s
}

func validArch(a string) bool {
	return a == "x86_64" || a == "i386" || a == "arm64"
}

// normaliseMAC accepts a 48-bit MAC with hyphens or colons (iPXE's hexhyp or
// hex form) and returns it lowercase with hyphens.
func normaliseMAC(s string) (string, error) {
	const want = "parameter mac must be a 48-bit MAC address such as 52-54-00-12-34-56"
	if s == "" {
		return "", fmt.Errorf("%s (it is missing)", want)
	}
	if len(s) != 17 {
		return "", fmt.Errorf("%s", want)
	}
	sep := s[2]
	if sep != '-' && sep != ':' {
		return "", fmt.Errorf("%s", want)
	}
	parts := strings.Split(s, string(sep))
	if len(parts) != 6 {
		return "", fmt.Errorf("%s", want)
	}
	for _, p := range parts {
		if len(p) != 2 || !isHex(p) {
			return "", fmt.Errorf("%s", want)
		}
	}
	return strings.ToLower(strings.Join(parts, "-")), nil
}

// normaliseUUID accepts an empty string (no SMBIOS UUID), the 8-4-4-4-12
// form or 32 hex digits, and returns the lowercase 8-4-4-4-12 form; the
// all-zero and all-ones UUIDs, which mean "none", become empty.
func normaliseUUID(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	const want = "parameter uuid must be a UUID such as 4c4c4544-0042-3010-8052-b4c04f4e4432"
	h := s
	if len(s) == 36 {
		for _, i := range []int{8, 13, 18, 23} {
			if s[i] != '-' {
				return "", fmt.Errorf("%s", want)
			}
		}
		h = strings.ReplaceAll(s, "-", "")
	}
	if len(h) != 32 || !isHex(h) {
		return "", fmt.Errorf("%s", want)
	}
	h = strings.ToLower(h)
	if h == strings.Repeat("0", 32) || h == strings.Repeat("f", 32) {
		// Firmware without a UUID reports one of these (GRUB's smbios
		// reads QEMU's zero UUID); as an identity it would merge machines.
		return "", nil
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && len(s)%2 == 0
}
