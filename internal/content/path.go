package content

import (
	"strings"
	"unicode/utf8"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// MaxPathLen is the longest manifest path accepted, in bytes.
const MaxPathLen = 4096

// ValidManifestPath checks that p is safe to create under a target directory
// on both Linux and Windows: a relative, clean, slash-separated path of
// valid UTF-8, at most MaxPathLen bytes, whose elements are not empty, "."
// or "..", contain no NUL or other control character, no backslash and no
// colon (drive letters, NTFS streams), do not end in a dot or space, and
// are not Windows device names (CON, NUL, COM1, …). It returns a
// KindInvalid error naming the path and the problem.
func ValidManifestPath(p string) error {
	bad := func(why string) error {
		return deploy.Errorf(deploy.KindInvalid, "path %q: %s", truncate(p, 200), why)
	}
	switch {
	case p == "":
		return deploy.Errorf(deploy.KindInvalid, "path is empty")
	case len(p) > MaxPathLen:
		return bad("longer than 4096 bytes")
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return bad("absolute path")
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == 0:
			return bad("contains NUL")
		case c < 0x20 || c == 0x7f:
			return bad("contains a control character")
		case c == '\\':
			return bad(`contains a backslash`)
		case c == ':':
			return bad("contains a colon")
		}
	}
	for _, el := range strings.Split(p, "/") {
		switch {
		case el == "":
			return bad("empty path element (leading, trailing or double slash)")
		case el == "..":
			return bad(`contains a ".." element`)
		case el == ".":
			return bad(`contains a "." element`)
		case strings.HasSuffix(el, ".") || strings.HasSuffix(el, " "):
			return bad("element " + quote(el) + " ends in a dot or space")
		case reservedName(el):
			return bad("element " + quote(el) + " is a Windows device name")
		}
	}
	return nil
}

func quote(s string) string { return `"` + s + `"` }

// reservedName reports Windows device names, which stay devices with any
// extension ("nul.txt") and in any case.
func reservedName(el string) bool {
	base, _, _ := strings.Cut(el, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		c := base[3]
		return c >= '0' && c <= '9'
	}
	// COM¹ COM² COM³ (superscript digits) are devices too.
	if strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT") {
		switch base[3:] {
		case "¹", "²", "³":
			return true
		}
	}
	return false
}
