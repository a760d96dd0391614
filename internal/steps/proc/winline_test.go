package proc

import (
	"fmt"
	"github.com/imprint-osd/imprint/internal/golden"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// splitWindows splits a command line as CommandLineToArgvW and the
// Microsoft C runtime do (2n backslashes + quote: n backslashes and a
// quote toggle; 2n+1 backslashes + quote: n backslashes and a literal
// quote; other backslashes are literal), written from the documented
// rules as an independent check of QuoteWindowsArg.
func splitWindows(line string) []string {
	var out []string
	var cur strings.Builder
	inQuotes, have := false, false
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(line) && line[i] == '\\' {
				n++
				i++
			}
			if i < len(line) && line[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
					i++
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
			}
			have = true
			continue
		case c == '"':
			inQuotes = !inQuotes
			have = true
		case (c == ' ' || c == '\t') && !inQuotes:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
		i++
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func TestQuoteWindowsArgRoundTrip(t *testing.T) {
	args := []string{"plain", "", "two words", `C:\Program Files\App\`, `say "hi"`, `back\\"slash`, `trail\`, "tab\there", `a\b\c`}
	line := WindowsCommandLine(`C:\Windows\System32\prog.exe`, args...)
	got := splitWindows(line)
	want := append([]string{`C:\Windows\System32\prog.exe`}, args...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s splits back differently (-want +got):\n%s", line, diff)
	}
}

func TestWindowsShellLines(t *testing.T) {
	var b strings.Builder
	for _, line := range []string{
		`echo hello`,
		`msiexec.exe /i "7z2600-x64.msi" /quiet /norestart`,
		`"C:\Program Files\Tool\setup.exe" /S /D=C:\Tool`,
		`pwsh.exe -NoProfile -ExecutionPolicy Bypass -File ".\x.ps1" && echo done`,
	} {
		c := ShellCmdFor("windows", line)
		fmt.Fprintf(&b, "line:    %s\nprogram: %s\ncmdline: %s\n\n", line, c.Path, c.CmdLine)
	}
	golden.Check(t, "windows-shell.golden", []byte(b.String()))
	if c := ShellCmdFor("linux", "echo hi"); c.Path != "/bin/sh" || c.CmdLine != "" || !cmp.Equal(c.Args, []string{"-c", "echo hi"}) {
		t.Errorf("linux shell = %+v", c)
	}
}
