package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":               "plain text",
		`C:\Windows\x1b`:           `C:\Windows\x1b`, // printable: left alone
		"Précision 5680 ü 中文":      "Précision 5680 ü 中文",
		"\x1b]0;pwned\x07":         `\x1b]0;pwned\x07`,
		"a\nb\rc\td":               `a\nb\rc\td`,
		"del\x7f":                  `del\x7f`,
		"csi\u009b2J":              `csi\u009b2J`,
		"rtl\u202eevil\u2066":      `rtl\u202eevil\u2066`,
		"zw\u200bsp\ufeff":         `zw\u200bsp\ufeff`,
		"line\u2028sep":            `line\u2028sep`,
		"bad\xffutf8":              `bad\xffutf8`,
		"tag\U000e0041":            `tag\U000e0041`,
		"private\ue000use":         `private\ue000use`,
		"\ufffd replacement is ok": "\ufffd replacement is ok",
	} {
		got := safe(in)
		if got != want {
			t.Errorf("safe(%q) = %q, want %q", in, got, want)
		}
		if again := safe(got); again != got {
			t.Errorf("safe is not idempotent on %q: %q", got, again)
		}
	}
	if got := safeText("one\x1b\ntwo\r\n"); got != "one\\x1b\ntwo\n" {
		t.Errorf("safeText = %q", got)
	}
}

func TestSafeJSONKeepsTheValue(t *testing.T) {
	in := map[string]string{"m": "\x1b[2J\u009b\u202e\u200b\U000e0041 ok é"}
	b, _ := json.Marshal(in)
	out := safeJSON(b)
	for _, r := range string(out) {
		if r >= 0x80 && r != 'é' {
			t.Errorf("safeJSON left %U raw in %s", r, out)
		}
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["m"] != in["m"] {
		t.Errorf("safeJSON(%s) = %s decodes to %q, %v", b, out, back, err)
	}
}

// A log value with a line break and escapes stays on its record's line, in
// both formats, with the escapes visible (security.md AU-3).
func TestServerLogLinesAreNotForged(t *testing.T) {
	const evil = "x\n{\"level\":\"INFO\",\"msg\":\"authn_login_success\"}\x1b[2J\u009b\u202e"
	for _, format := range []string{"text", "json"} {
		var out bytes.Buffer
		a := &app{stderr: &out}
		newLogger(a, format, "info").Info("step failed", "name", evil)
		got := out.String()
		if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
			t.Errorf("%s: one record is %d lines: %q", format, strings.Count(got, "\n"), got)
		}
		for _, c := range []string{"\x1b", "\u009b", "\u202e"} {
			if strings.Contains(got, c) {
				t.Errorf("%s: %q raw in %q", format, c, got)
			}
		}
		if format == "json" {
			var rec map[string]any
			if err := json.Unmarshal(out.Bytes(), &rec); err != nil || rec["name"] != evil {
				t.Errorf("json record %q decodes to %v, %v", got, rec, err)
			}
		}
	}
}

// Downloads to stdout are raw bytes: not onto a terminal.
func TestDownloadsRefuseATerminal(t *testing.T) {
	r := newTestApp(t, map[string]string{"IMPRINT_DATA": t.TempDir()})
	r.terminal = true
	for _, args := range [][]string{{"content", "get", "x"}, {"content", "get", "x", "-o", "-"}, {"runs", "logs", "r", "--name", "b"}} {
		if code := r.run(args...); code != 2 || !strings.Contains(r.stderr.String(), "not writing a download to the terminal") {
			t.Errorf("%v at a terminal: exit %d, %s", args, code, r.stderr)
		}
	}
	r.terminal = false
	if code := r.run("content", "get", "x"); code == 2 || strings.Contains(r.stderr.String(), "terminal") {
		t.Errorf("content get into a pipe: exit %d, %s", code, r.stderr)
	}
}
