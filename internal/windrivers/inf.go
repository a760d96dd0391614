// Package windrivers injects a driver pack into an applied, offline
// Windows image from Linux, with no DISM: the pack is staged under the
// Windows partition and added to the SOFTWARE hive's DevicePath (Windows
// searches it when it meets a device its driver store cannot serve), and
// each boot-critical storage driver (INF class SCSIAdapter or HDC) is
// registered in the SYSTEM hive as a boot-start service with the
// DriverDatabase (Windows 8 and later) or CriticalDeviceDatabase entries
// that let Windows bind it to its controller on the first boot, so it can
// reach its own disk (spec/windows-offline.md §5, the recipe virt-v2v
// uses for virtio storage).
package windrivers

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// INF is a parsed driver setup information file: its sections, each a
// list of lines, with %strkey% tokens replaced from [Strings].
type INF struct {
	sections map[string][]Line // by lower-case name
}

// Line is one line of a section: "key = v1, v2" or just "v1, v2".
type Line struct {
	Key    string
	Values []string
}

// ParseINF parses an INF file (UTF-8/ANSI, or UTF-16LE with a BOM).
func ParseINF(b []byte) (*INF, error) {
	text := decode(b)
	inf := &INF{sections: map[string][]Line{}}
	cur := ""
	var raw []string
	var pending string
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		l = stripComment(l)
		if strings.HasSuffix(strings.TrimRight(l, " \t"), "\\") { // line continuation
			pending += strings.TrimSuffix(strings.TrimRight(l, " \t"), "\\")
			continue
		}
		l, pending = pending+l, ""
		raw = append(raw, l)
	}
	strs := map[string]string{}
	// Two passes: [Strings] first, so substitution works wherever it is.
	for pass := 0; pass < 2; pass++ {
		cur = ""
		for _, l := range raw {
			t := strings.TrimSpace(l)
			if t == "" {
				continue
			}
			if strings.HasPrefix(t, "[") {
				end := strings.IndexByte(t, ']')
				if end < 0 {
					return nil, fmt.Errorf("inf: section header %q has no ]", t)
				}
				cur = strings.ToLower(strings.TrimSpace(t[1:end]))
				if pass == 1 {
					if _, ok := inf.sections[cur]; !ok {
						inf.sections[cur] = nil
					}
				}
				continue
			}
			if cur == "" {
				continue // before any section: ignored, as Windows does
			}
			var line Line
			if k, v, ok := cutEquals(t); ok {
				line.Key, t = unquote(strings.TrimSpace(k)), v
			}
			for _, v := range splitValues(t) {
				line.Values = append(line.Values, v)
			}
			if pass == 0 {
				if strings.HasPrefix(cur, "strings") && line.Key != "" && len(line.Values) > 0 {
					strs[strings.ToLower(line.Key)] = line.Values[0]
				}
				continue
			}
			line.Key = subst(line.Key, strs)
			for i := range line.Values {
				line.Values[i] = subst(line.Values[i], strs)
			}
			inf.sections[cur] = append(inf.sections[cur], line)
		}
	}
	if _, ok := inf.sections["version"]; !ok {
		return nil, fmt.Errorf("inf: no [Version] section")
	}
	return inf, nil
}

func decode(b []byte) string {
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE {
		b = b[2:]
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u))
	}
	return string(bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF}))
}

// stripComment drops a ; comment that is not inside quotes.
func stripComment(l string) string {
	in := false
	for i, c := range l {
		switch c {
		case '"':
			in = !in
		case ';':
			if !in {
				return l[:i]
			}
		}
	}
	return l
}

func cutEquals(t string) (string, string, bool) {
	in := false
	for i, c := range t {
		switch c {
		case '"':
			in = !in
		case '=':
			if !in {
				return t[:i], t[i+1:], true
			}
		}
	}
	return "", t, false
}

func splitValues(t string) []string {
	var out []string
	in, start := false, 0
	for i, c := range t {
		switch c {
		case '"':
			in = !in
		case ',':
			if !in {
				out = append(out, unquote(strings.TrimSpace(t[start:i])))
				start = i + 1
			}
		}
	}
	return append(out, unquote(strings.TrimSpace(t[start:])))
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}

// subst replaces %key% from [Strings]; %% is a literal %.
func subst(s string, strs map[string]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		key := s[i+1 : i+1+j]
		b.WriteString(s[:i])
		if v, ok := strs[strings.ToLower(key)]; ok {
			b.WriteString(v)
		} else if key == "" {
			b.WriteByte('%')
		} else {
			b.WriteString("%" + key + "%") // dirids like %12% stay
		}
		s = s[i+j+2:]
	}
}

// Section returns a section's lines (nil when absent).
func (f *INF) Section(name string) []Line { return f.sections[strings.ToLower(name)] }

// HasSection reports whether the section exists (even empty).
func (f *INF) HasSection(name string) bool {
	_, ok := f.sections[strings.ToLower(name)]
	return ok
}

// Value returns the first value of key in section ("" when absent).
func (f *INF) Value(section, key string) string {
	for _, l := range f.Section(section) {
		if strings.EqualFold(l.Key, key) && len(l.Values) > 0 {
			return l.Values[0]
		}
	}
	return ""
}
