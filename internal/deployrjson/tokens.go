package deployrjson

import (
	"bytes"
	"fmt"
)

// Tokens splits a JSON text into its tokens as written: punctuation,
// literals, numbers and strings with their quotes and escapes untouched.
// White space between tokens and a leading byte-order mark are dropped, so
// two texts with the same tokens differ at most in layout. It is how an
// export is compared with the file it came from.
func Tokens(b []byte) ([]string, error) {
	b = bytes.TrimPrefix(b, []byte(bom))
	var out []string
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',':
			out = append(out, string(c))
			i++
		case c == '"':
			j := i + 1
			for ; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if j >= len(b) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			out = append(out, string(b[i:j+1]))
			i = j + 1
		default:
			j := i
			for j < len(b) && bytes.IndexByte([]byte(" \t\r\n{}[]:,\""), b[j]) < 0 {
				j++
			}
			out = append(out, string(b[i:j]))
			i = j
		}
	}
	return out, nil
}
