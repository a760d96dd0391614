// Package unattend writes the answer file (unattend.xml) that a freshly
// applied, generalized Windows image reads on its first boot, and the
// pieces that make the task sequence continue inside Windows afterwards
// (the Apply operating system ContinueMethod).
//
// On the first boot of an applied image only the specialize and oobeSystem
// passes run (spec/windows-offline.md §4.1), so everything goes into those
// two: computer name, product key, owner and time zone in specialize; the
// language settings, OOBE page skips, the Administrator password and, for
// AutoAdminLogon, the logon in oobeSystem; an offline domain join blob in
// specialize (UnattendedJoin Provisioning/AccountData).
//
// Passwords are written as Windows' "hidden" form (PlainText false:
// base64 of UTF-16LE password+suffix), which hides but does not encrypt
// them; the answer file is deleted once Setup has finished (the cleanup
// line at the top of SetupComplete.cmd, written for every method).
package unattend

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Method is the Apply operating system ContinueMethod: how the sequence
// resumes in the new installation (stepdefs' continueMethods).
type Method int

// The four methods. ParseMethod maps DeployR's option values ("0" custom,
// "1" SetupComplete.cmd, "2" specialize, "3" AutoAdminLogon) to them; the
// zero value is SetupComplete.cmd, the catalogue's default.
const (
	SetupComplete      Method = iota // Windows\Setup\Scripts\SetupComplete.cmd
	SpecializeRunSync                // specialize RunSynchronousCommand
	AutoAdminLogonOnce               // oobeSystem AutoLogon as Administrator + HKLM RunOnce
	CustomUnattend                   // the given unattend.xml, with a specialize RunSynchronous added
)

// ParseMethod reads a ContinueMethod option ("" is SetupComplete.cmd, the
// catalogue's default).
func ParseMethod(s string) (Method, error) {
	switch strings.TrimSpace(s) {
	case "":
		return SetupComplete, nil
	case "0":
		return CustomUnattend, nil
	case "1":
		return SetupComplete, nil
	case "2":
		return SpecializeRunSync, nil
	case "3":
		return AutoAdminLogonOnce, nil
	}
	return 0, deploy.Errorf(deploy.KindInvalid, "ContinueMethod %q is not 0 (custom unattend.xml), 1 (SetupComplete.cmd), 2 (specialize RunSynchronous) or 3 (AutoAdminLogon and RunOnce)", s)
}

func (m Method) String() string {
	switch m {
	case CustomUnattend:
		return "custom unattend.xml"
	case SetupComplete:
		return "SetupComplete.cmd"
	case SpecializeRunSync:
		return "specialize RunSynchronous"
	case AutoAdminLogonOnce:
		return "AutoAdminLogon and RunOnce"
	}
	return fmt.Sprintf("method %d", int(m))
}

// Paths on the Windows volume (relative to its root).
const (
	AnswerFile        = `Windows\Panther\unattend.xml`
	SetupCompleteFile = `Windows\Setup\Scripts\SetupComplete.cmd`
)

// DefaultCommand starts the Windows agent so that it resumes the run's
// journal: the contract with the staged agent (issue 11 item 3/5).
const DefaultCommand = `"%SystemDrive%\ProgramData\Imprint\imprint-agent.exe" resume`

// Options are the settings of the answer file, from DeployR's variables
// (OSDComputerName, TimeZone, SystemLocale, UserLocale, UILanguage,
// InputLocale, AdminPassword, ...) and the Apply operating system step.
type Options struct {
	Arch           string // amd64 (default), arm64 or x86
	ComputerName   string // "" or "*": Windows picks a random name
	TimeZone       string // Windows time zone id, e.g. "W. Europe Standard Time"
	SystemLocale   string
	UserLocale     string
	UILanguage     string
	InputLocale    string
	ProductKey     string
	Owner          string
	Organization   string
	AdminPassword  string // enables the built-in Administrator with this password
	DomainJoinBlob string // offline domain join provisioning data (base64)
	Method         Method
	// Command is what the continuation runs; "" is DefaultCommand.
	Command string
	// Custom is a custom unattend.xml used instead of the generated one
	// (the continuation is added to it).
	Custom []byte
}

// Result is what to write on the Windows volume.
type Result struct {
	// Unattend is Windows\Panther\unattend.xml.
	Unattend []byte
	// SetupComplete is Windows\Setup\Scripts\SetupComplete.cmd (CRLF).
	SetupComplete []byte
	// RunOnce, when set, is the command for the SOFTWARE hive's
	// Microsoft\Windows\CurrentVersion\RunOnce (AutoAdminLogon method),
	// under the value name RunOnceName.
	RunOnce string
}

// RunOnceName is the RunOnce value the AutoAdminLogon method sets.
const RunOnceName = "ImprintResume"

// ComputerName checks a name as Windows Setup does (§4.2): at most 15
// bytes, none of the forbidden characters, not all digits.
func ComputerName(s string) error {
	if s == "" || s == "*" {
		return nil
	}
	if len(s) > 15 {
		return deploy.Errorf(deploy.KindInvalid, "computer name %q is longer than 15 characters", s)
	}
	if i := strings.IndexAny(s, " {}|~[\\]^':;<=>?@!\"#$%`()+/.,*&"); i >= 0 {
		return deploy.Errorf(deploy.KindInvalid, "computer name %q contains %q, which Windows does not allow", s, s[i])
	}
	if strings.Trim(s, "0123456789") == "" {
		return deploy.Errorf(deploy.KindInvalid, "computer name %q is all digits, which Windows does not allow", s)
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return deploy.Errorf(deploy.KindInvalid, "computer name %q has a character outside printable ASCII", s)
		}
	}
	return nil
}

// HidePassword encodes a password as unattend's PlainText=false form:
// base64 of UTF-16LE(password + suffix), suffix "AdministratorPassword" for
// UserAccounts/AdministratorPassword and "Password" for the others
// (checked against Microsoft's samples, spec §4.2).
func HidePassword(password, suffix string) string {
	u := utf16.Encode([]rune(password + suffix))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DomainJoinBlob turns an offline domain join file's content into the
// base64 text AccountData takes: djoin and Samba save it as UTF-16LE with
// a BOM and a trailing NUL (§7); plain ASCII base64 is accepted as is.
func DomainJoinBlob(b []byte) (string, error) {
	s := string(b)
	if len(b) >= 2 && (b[0] == 0xFF && b[1] == 0xFE || b[0] != 0 && b[1] == 0) {
		if b[0] == 0xFF && b[1] == 0xFE {
			b = b[2:]
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		s = string(utf16.Decode(u))
	}
	s = strings.Map(func(r rune) rune {
		if r == 0 || r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "", deploy.Errorf(deploy.KindInvalid, "the offline domain join data is empty")
	}
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return "", deploy.Errorf(deploy.KindInvalid, "the offline domain join data is not base64 provisioning data (djoin /provision or net offlinejoin output)")
	}
	return s, nil
}

// escape XML-escapes a value (& < > " ').
func escape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
