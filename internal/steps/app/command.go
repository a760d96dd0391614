package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/steps/proc"
)

// ExitRebootInitiated is the Windows installer code for "installed, and
// a restart was started" (ERROR_SUCCESS_REBOOT_INITIATED); like
// ExitRebootRequired it is a success that asks for a reboot, which the
// agent does itself so that the sequence resumes after it.
const ExitRebootInitiated = 1641

// MSIExec is the Windows Installer program.
const MSIExec = "msiexec.exe"

// Install is how one application is installed: Cmd runs; MSI is the
// package when Windows Installer runs it; Log its verbose log.
type Install struct {
	Cmd      proc.Cmd
	MSI, Log string
}

// InstallCommand builds the process that installs an application for
// goos. line is the version's installation command line (variables
// expanded), content the local path of its content, logDir where an MSI
// log goes and name names that log. A line whose program is a .msi file,
// or an empty line with content that is one .msi (a File item, or a
// folder with a single .msi at its top), runs
//
//	msiexec.exe /i PKG /qn /norestart /l*v LOG [the rest of the line]
//
// (Windows only); any other line runs through the system shell
// (proc.ShellCmd). The Windows command line is kept as text in Cmd.CmdLine,
// which the golden tests check.
func InstallCommand(goos, line, content, logDir, name string) (Install, error) {
	line = strings.TrimSpace(line)
	msi, rest := "", ""
	if line == "" {
		msi = singleMSI(content)
		if msi == "" {
			return Install{}, fmt.Errorf("no installation command line, and the content is not one .msi package")
		}
	} else if first, r := firstToken(line); strings.EqualFold(filepath.Ext(first), ".msi") {
		msi, rest = first, strings.TrimSpace(r)
	}
	if msi == "" {
		return Install{Cmd: proc.ShellCmdFor(goos, line)}, nil
	}
	if goos != "windows" {
		return Install{}, fmt.Errorf("%s is a Windows Installer package, which installs only on Windows", msi)
	}
	log := strings.TrimRight(logDir, `\/`) + `\` + name + ".msi.log"
	args := []string{"/i", msi, "/qn", "/norestart", "/l*v", log}
	c := proc.Cmd{Path: MSIExec, Args: append(args, strings.Fields(rest)...), CmdLine: proc.WindowsCommandLine(MSIExec, args...)}
	if rest != "" {
		c.CmdLine += " " + rest
	}
	return Install{Cmd: c, MSI: msi, Log: log}, nil
}

// firstToken splits off the program of a command line: up to the closing
// quote when it starts with one, else up to white space.
func firstToken(line string) (string, string) {
	if strings.HasPrefix(line, `"`) {
		if i := strings.IndexByte(line[1:], '"'); i >= 0 {
			return line[1 : i+1], line[i+2:]
		}
		return line[1:], ""
	}
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		return line[:i], line[i:]
	}
	return line, ""
}

// singleMSI returns content when it is a .msi file, or the only .msi at
// the top of the content folder; else "".
func singleMSI(content string) string {
	if content == "" {
		return ""
	}
	fi, err := os.Stat(content)
	if err != nil {
		return ""
	}
	if !fi.IsDir() {
		if strings.EqualFold(filepath.Ext(content), ".msi") {
			return content
		}
		return ""
	}
	ents, err := os.ReadDir(content)
	if err != nil {
		return ""
	}
	found := ""
	for _, e := range ents {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".msi") {
			if found != "" {
				return ""
			}
			found = e.Name()
		}
	}
	return found
}
