package cli

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// safe makes an untrusted string harmless on a terminal. Machines report
// names, messages and log text, and before login a client chooses what it
// claims to be: printed raw, an ESC or C1 control could retitle the
// window, rewrite earlier lines or hide text, and a bidirectional override
// could make one id read as another. Every character that is not
// printable is shown as a visible escape instead: C0 controls and DEL as
// \n, \r, \t or \xHH, C1 controls, formatting characters (bidi overrides,
// zero-width marks) and line or paragraph separators as \uXXXX, and
// bytes that are not UTF-8 as \xHH. Printable text, including backslashes
// and non-ASCII letters, is left as it is, so safe(safe(s)) == safe(s).
func safe(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

// safeText is safe for text of several lines (a step's output tail, a
// log): line breaks are kept, every other control is escaped.
func safeText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = safe(l)
	}
	return strings.Join(lines, "\n")
}

// safeJSON escapes, inside encoded JSON, the characters encoding/json
// leaves raw but a terminal acts on: C1 controls and formatting
// characters. They can only occur inside strings, where \uXXXX means the
// same, so the document decodes to the very same value.
func safeJSON(b []byte) []byte {
	clean := true
	for _, r := range string(b) {
		if r >= 0x80 && !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		switch {
		case r < 0x80 || unicode.IsPrint(r):
			out.WriteRune(r)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, hi, lo)
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
	}
	return out.Bytes()
}

// notToTerminal refuses a download to stdout when stdout is a terminal:
// the bytes are the machine's or the store's, unescaped, and a terminal
// would act on the escape sequences among them.
func (a *app) notToTerminal(cmd string) error {
	if a.isTerminal(a.stdout) {
		return usagef(cmd+": not writing a download to the terminal, where its bytes could act as escape sequences",
			"give -o FILE, or redirect stdout (> FILE, | tar -t)")
	}
	return nil
}
