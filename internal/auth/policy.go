package auth

import (
	_ "embed"
	"strings"
	"unicode"
)

// blocklistText is the embedded list of common passwords and product words
// (see the comment at its top for how it is matched).
//
//go:embed blocklist.txt
var blocklistText string

// loadBlocklist parses the embedded list. It runs per policy check (an
// admin action, a few hundred lines) so that the package keeps no state.
func loadBlocklist() map[string]bool {
	set := make(map[string]bool, 300)
	for line := range strings.Lines(blocklistText) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[strings.ToLower(line)] = true
	}
	return set
}

// blocked reports whether any simple variant of p (lower case, ends
// stripped, leet undone, separators removed) is on the list, a list word
// repeated, or two list words joined.
func blocked(p string) bool {
	set := loadBlocklist()
	for _, c := range variants(p) {
		if c == "" {
			continue
		}
		if set[c] || repeatsWord(set, c) || joinsTwoWords(set, c) {
			return true
		}
	}
	return false
}

// variants returns the candidate spellings of p that are matched against
// the blocklist.
func variants(p string) []string {
	s := strings.ToLower(p)
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, base := range []string{s, removeSeparators(s)} {
		symbolsOff := strings.TrimFunc(base, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		for _, x := range []string{base, symbolsOff, stripEnds(base), stripTrailing(base), stripLeading(base)} {
			add(x)
			for _, one := range []rune{'i', 'l'} {
				d := deleet(x, one)
				add(d)
				add(stripEnds(d))
			}
		}
	}
	return out
}

func notLetter(r rune) bool { return !unicode.IsLetter(r) }

func stripEnds(s string) string     { return strings.TrimFunc(s, notLetter) }
func stripTrailing(s string) string { return strings.TrimRightFunc(s, notLetter) }
func stripLeading(s string) string  { return strings.TrimLeftFunc(s, notLetter) }

func removeSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '_', '.':
			return -1
		}
		return r
	}, s)
}

// deleet undoes common substitutions; one is what '1' stands for.
func deleet(s string, one rune) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '0':
			return 'o'
		case '1':
			return one
		case '!', '|':
			return 'i'
		case '3':
			return 'e'
		case '4', '@':
			return 'a'
		case '5', '$':
			return 's'
		case '7', '+':
			return 't'
		case '8':
			return 'b'
		case '9':
			return 'g'
		}
		return r
	}, s)
}

// repeatsWord reports whether s is a list word written two or more times.
func repeatsWord(set map[string]bool, s string) bool {
	for n := 1; n <= len(s)/2; n++ {
		if len(s)%n == 0 && set[s[:n]] && strings.Repeat(s[:n], len(s)/n) == s {
			return true
		}
	}
	return false
}

// joinsTwoWords reports whether s is two list words joined.
func joinsTwoWords(set map[string]bool, s string) bool {
	for i := 1; i < len(s); i++ {
		if set[s[:i]] && set[s[i:]] {
			return true
		}
	}
	return false
}

// shortPeriod reports whether r is one character, or a pattern of up to
// three characters, repeated ("aaaaaaaa", "abababab", "abcabcab").
func shortPeriod(r []rune) bool {
	for period := 1; period <= 3 && period < len(r); period++ {
		same := true
		for i := period; i < len(r); i++ {
			if r[i] != r[i-period] {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// isSequence reports whether s (lower case), ignoring symbols at its ends,
// steps by +1 or −1 all the way ("12345678", "hgfedcba") or is a run of a
// keyboard row, either way round.
func isSequence(s string) bool {
	core := strings.TrimFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	r := []rune(core)
	if len(r) < 3 {
		return false
	}
	if step := r[1] - r[0]; step == 1 || step == -1 {
		all := true
		for i := 2; i < len(r); i++ {
			if r[i]-r[i-1] != step {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	// Keyboard rows (QWERTY, QWERTZ, AZERTY) people type instead of choosing.
	rows := [...]string{"1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "azertyuiop", "qsdfghjklm", "wxcvbn"}
	rev := reverse(core)
	for _, row := range rows {
		if strings.Contains(row, core) || strings.Contains(row, rev) {
			return true
		}
	}
	return false
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
