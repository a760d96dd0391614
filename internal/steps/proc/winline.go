package proc

import (
	"runtime"
	"strings"
)

// The Windows command lines of the steps are built here, with no build
// tag, so that what runs on Windows is the same text the golden tests on
// Linux check: on Windows, Run hands Cmd.CmdLine to CreateProcess as is.

// WindowsCmd is cmd.exe, which runs command lines on Windows.
const WindowsCmd = `cmd.exe`

// QuoteWindowsArg quotes one argument the way the Microsoft C runtime
// (and CommandLineToArgvW) splits it back: unchanged when it has no
// space, tab or quote; else in quotes, with backslashes doubled before a
// quote or the closing quote and each quote escaped (the rules of Go's
// syscall.EscapeArg, which exists on Windows only).
func QuoteWindowsArg(s string) string {
	if s == "" {
		return `""`
	}
	if !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	b.WriteString(strings.Repeat(`\`, slashes))
	b.WriteByte('"')
	return b.String()
}

// WindowsCommandLine joins a program and its arguments into a Windows
// command line (QuoteWindowsArg each).
func WindowsCommandLine(prog string, args ...string) string {
	parts := make([]string, 0, len(args)+1)
	parts = append(parts, QuoteWindowsArg(prog))
	for _, a := range args {
		parts = append(parts, QuoteWindowsArg(a))
	}
	return strings.Join(parts, " ")
}

// WindowsShellLine is the command line that runs line through cmd.exe:
// /d skips the AutoRun commands of the registry, /s /c "…" makes cmd.exe
// strip only the outer quotes and run the rest as typed, so quotes inside
// the line (msiexec /i "My App.msi") reach the program unchanged. cmd.exe
// does not understand the C runtime's \" escapes, which is why the line is
// not quoted with QuoteWindowsArg.
func WindowsShellLine(line string) string {
	return WindowsCmd + ` /d /s /c "` + line + `"`
}

// ShellCmd returns the command that runs a command line through the
// system shell: sh -c on Unix; on Windows cmd.exe with CmdLine set to
// WindowsShellLine.
func ShellCmd(line string) Cmd { return ShellCmdFor(runtime.GOOS, line) }

// ShellCmdFor is ShellCmd for goos.
func ShellCmdFor(goos, line string) Cmd {
	if goos == "windows" {
		return Cmd{Path: WindowsCmd, Args: []string{"/d", "/s", "/c", line}, CmdLine: WindowsShellLine(line)}
	}
	return Cmd{Path: "/bin/sh", Args: []string{"-c", line}}
}
