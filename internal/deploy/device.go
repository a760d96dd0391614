package deploy

import (
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the identity a machine claims at login (security.md GN-6).
// They are generous for real SMBIOS strings and small enough that an
// attacker cannot park kilobytes of text in the device table.
const (
	MaxDeviceSerial = 64  // bytes of SerialNumber
	MaxDeviceText   = 128 // bytes of Make, Model and Name
	MaxDeviceMACs   = 32
	MaxDeviceDisks  = 32
)

// Normalize checks the identity fields a machine sent and puts the UUID
// and MACs in their canonical form (lowercase 8-4-4-4-12, lowercase
// colon-separated). It refuses, with KindInvalid and one FieldError per
// problem, a UUID or MAC that is not one, and a serial number, make, model
// or name that is too long, not UTF-8 or holds anything but printable
// characters: these strings reach an administrator's terminal and logs.
func (d *Device) Normalize() error {
	var fe []FieldError
	if d.UUID != "" {
		u, err := ParseUUID(d.UUID)
		if err != nil {
			fe = append(fe, FieldError{Field: "uuid", Message: err.Error()})
		}
		d.UUID = u
	}
	if len(d.MACs) > MaxDeviceMACs {
		fe = append(fe, FieldError{Field: "macs", Message: fmt.Sprintf("more than %d MAC addresses", MaxDeviceMACs)})
	} else {
		for i, m := range d.MACs {
			hw, err := net.ParseMAC(m)
			if err != nil || !PrintableText(m) {
				fe = append(fe, FieldError{Field: fmt.Sprintf("macs[%d]", i), Message: "not a MAC address such as 52:54:00:12:34:56"})
				continue
			}
			d.MACs[i] = hw.String()
		}
	}
	for _, f := range []struct {
		name string
		v    string
		max  int
	}{
		{"serialNumber", d.SerialNumber, MaxDeviceSerial},
		{"make", d.Make, MaxDeviceText},
		{"model", d.Model, MaxDeviceText},
		{"name", d.Name, MaxDeviceText},
	} {
		switch {
		case len(f.v) > f.max:
			fe = append(fe, FieldError{Field: f.name, Message: fmt.Sprintf("longer than %d bytes", f.max)})
		case !PrintableText(f.v):
			fe = append(fe, FieldError{Field: f.name, Message: "holds a control, formatting or invalid character"})
		}
	}
	if len(d.Disks) > MaxDeviceDisks {
		fe = append(fe, FieldError{Field: "disks", Message: fmt.Sprintf("more than %d disks", MaxDeviceDisks)})
	} else {
		for i, k := range d.Disks {
			for _, f := range []struct{ name, v string }{{"name", k.Name}, {"model", k.Model}} {
				if len(f.v) > MaxDeviceText || !PrintableText(f.v) {
					fe = append(fe, FieldError{Field: fmt.Sprintf("disks[%d].%s", i, f.name), Message: fmt.Sprintf("longer than %d bytes or holds a control, formatting or invalid character", MaxDeviceText)})
				}
			}
			if k.Size < 0 {
				fe = append(fe, FieldError{Field: fmt.Sprintf("disks[%d].size", i), Message: "negative"})
			}
		}
	}
	if len(fe) > 0 {
		return &Error{Kind: KindInvalid, Message: "device identity is malformed", Fields: fe}
	}
	return nil
}

// ParseUUID accepts an SMBIOS UUID as 8-4-4-4-12 hex digits (optionally in
// braces, as Windows prints it) or 32 hex digits, and returns the
// lowercase 8-4-4-4-12 form.
func ParseUUID(s string) (string, error) {
	const want = "not a UUID such as 4c4c4544-0042-3010-8052-b4c04f4e4432"
	h := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if len(h) == 36 {
		for _, i := range []int{8, 13, 18, 23} {
			if h[i] != '-' {
				return "", fmt.Errorf("%s", want)
			}
		}
		h = strings.ReplaceAll(h, "-", "")
	}
	if len(h) != 32 {
		return "", fmt.Errorf("%s", want)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("%s", want)
	}
	h = strings.ToLower(h)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// PrintableText reports whether s is valid UTF-8 made only of printable
// characters and plain spaces: no control characters (C0, DEL, C1), no
// formatting characters (bidirectional overrides, zero-width marks) and no
// line or paragraph separators.
func PrintableText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// CleanDeviceText makes s acceptable to Normalize as a serial number,
// make, model or name: characters that are not printable are dropped,
// surrounding space trimmed, and the result cut to max bytes on a
// character boundary. The agent uses it on what the firmware reports.
func CleanDeviceText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	s = strings.TrimSpace(s)
	for len(s) > max {
		_, n := utf8.DecodeLastRuneInString(s)
		s = strings.TrimSpace(s[:len(s)-n])
	}
	return s
}
