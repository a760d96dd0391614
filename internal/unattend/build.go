package unattend

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

const (
	nsUnattend = "urn:schemas-microsoft-com:unattend"
	nsWCM      = "http://schemas.microsoft.com/WMIConfig/2002/State"
)

// Build makes the answer file and the continuation for o.
func Build(o Options) (*Result, error) {
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	switch o.Arch {
	case "amd64", "arm64", "x86":
	default:
		return nil, deploy.Errorf(deploy.KindInvalid, "unattend: processor architecture %q is not amd64, arm64 or x86", o.Arch)
	}
	if o.Command == "" {
		o.Command = DefaultCommand
	}
	if len(o.Command) > 259 {
		return nil, deploy.Errorf(deploy.KindInvalid, "unattend: the continuation command is longer than the 259 characters RunSynchronous allows")
	}
	if o.Method == AutoAdminLogonOnce && o.AdminPassword == "" && len(o.Custom) == 0 {
		return nil, deploy.Errorf(deploy.KindInvalid, "ContinueMethod AutoAdminLogon needs the Administrator's password: set the AdminPassword variable (Enable Administrator account)")
	}
	if o.Method == CustomUnattend && len(o.Custom) == 0 {
		return nil, deploy.Errorf(deploy.KindInvalid, "ContinueMethod 0 (custom unattend.xml) needs the Unattend content item on Apply operating system")
	}
	res := &Result{SetupComplete: setupComplete(o)}
	if o.Method == AutoAdminLogonOnce {
		res.RunOnce = o.Command
	}
	var err error
	if len(o.Custom) > 0 {
		res.Unattend, err = addToCustom(o)
	} else {
		res.Unattend, err = generate(o)
	}
	if err != nil {
		return nil, err
	}
	if err := Check(res.Unattend); err != nil {
		return nil, fmt.Errorf("unattend: the answer file made is not valid: %w", err)
	}
	return res, nil
}

// setupComplete is SetupComplete.cmd: it deletes the answer file (it can
// hold the hidden Administrator password and the domain join blob) once
// Setup is done with it, and for the SetupComplete method starts the agent.
func setupComplete(o Options) []byte {
	lines := []string{
		"@echo off",
		"rem Written by Imprint. Setup has used the answer file; it holds secrets, so remove it.",
		`del /f /q "%WINDIR%\Panther\unattend.xml" >nul 2>&1`,
	}
	if o.Method == SetupComplete {
		lines = append(lines, "rem Continue the task sequence (ContinueMethod SetupComplete.cmd).", o.Command)
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

type writer struct {
	b      bytes.Buffer
	indent int
	prefix string // written before every line's indentation
}

func (w *writer) line(format string, args ...any) {
	w.b.WriteString(w.prefix)
	w.b.WriteString(strings.Repeat("  ", w.indent))
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteByte('\n')
}

func (w *writer) open(tag string) { w.line("<%s>", tag); w.indent++ }
func (w *writer) close(tag string) {
	w.indent--
	w.line("</%s>", tag)
}

// elem writes <tag>value</tag> when value is not empty.
func (w *writer) elem(tag, value string) {
	if value != "" {
		w.line("<%s>%s</%s>", tag, escape(value), tag)
	}
}

func (w *writer) component(name, arch string) {
	w.line(`<component name="%s" processorArchitecture="%s" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" xmlns:wcm="%s">`, name, arch, nsWCM)
	w.indent++
}

func runSyncCommand(w *writer, order int, path, desc string, declareWCM bool) {
	ns := ""
	if declareWCM {
		ns = ` xmlns:wcm="` + nsWCM + `"`
	}
	w.line(`<RunSynchronousCommand wcm:action="add"%s>`, ns)
	w.indent++
	w.elem("Order", strconv.Itoa(order))
	w.elem("Path", path)
	w.elem("Description", desc)
	w.elem("WillReboot", "Never")
	w.close("RunSynchronousCommand")
}

func generate(o Options) ([]byte, error) {
	if err := ComputerName(o.ComputerName); err != nil {
		return nil, err
	}
	w := &writer{}
	w.line(`<?xml version="1.0" encoding="utf-8"?>`)
	w.line(`<unattend xmlns="%s">`, nsUnattend)
	w.indent++

	w.line(`<settings pass="specialize">`)
	w.indent++
	w.component("Microsoft-Windows-Shell-Setup", o.Arch)
	w.elem("ComputerName", o.ComputerName)
	w.elem("ProductKey", o.ProductKey)
	w.elem("RegisteredOrganization", o.Organization)
	w.elem("RegisteredOwner", o.Owner)
	w.elem("TimeZone", o.TimeZone)
	w.close("component")
	if o.DomainJoinBlob != "" {
		w.component("Microsoft-Windows-UnattendedJoin", o.Arch)
		w.open("Identification")
		w.open("Provisioning")
		w.elem("AccountData", o.DomainJoinBlob)
		w.close("Provisioning")
		w.close("Identification")
		w.close("component")
	}
	var cmds [][2]string
	if o.AdminPassword != "" && o.Method != AutoAdminLogonOnce {
		// AutoLogon as Administrator enables the account by itself; without
		// it the account stays disabled unless something enables it (§8).
		cmds = append(cmds, [2]string{"net user Administrator /active:yes", "Enable the built-in Administrator account"})
	}
	if o.Method == SpecializeRunSync {
		cmds = append(cmds, [2]string{o.Command, "Continue the task sequence (Imprint)"})
	}
	if len(cmds) > 0 {
		w.component("Microsoft-Windows-Deployment", o.Arch)
		w.open("RunSynchronous")
		for i, c := range cmds {
			runSyncCommand(w, i+1, c[0], c[1], false)
		}
		w.close("RunSynchronous")
		w.close("component")
	}
	w.close("settings")

	w.line(`<settings pass="oobeSystem">`)
	w.indent++
	if o.InputLocale != "" || o.SystemLocale != "" || o.UILanguage != "" || o.UserLocale != "" {
		w.component("Microsoft-Windows-International-Core", o.Arch)
		w.elem("InputLocale", o.InputLocale)
		w.elem("SystemLocale", o.SystemLocale)
		w.elem("UILanguage", o.UILanguage)
		w.elem("UserLocale", o.UserLocale)
		w.close("component")
	}
	w.component("Microsoft-Windows-Shell-Setup", o.Arch)
	if o.Method == AutoAdminLogonOnce {
		w.open("AutoLogon")
		w.open("Password")
		w.elem("Value", HidePassword(o.AdminPassword, "Password"))
		w.elem("PlainText", "false")
		w.close("Password")
		w.elem("Enabled", "true")
		w.elem("LogonCount", "1")
		w.elem("Username", "Administrator")
		w.close("AutoLogon")
	}
	w.open("OOBE")
	w.elem("HideEULAPage", "true")
	if o.AdminPassword != "" {
		w.elem("HideLocalAccountScreen", "true")
	}
	w.elem("HideOEMRegistrationScreen", "true")
	w.elem("HideOnlineAccountScreens", "true")
	w.elem("HideWirelessSetupInOOBE", "true")
	w.elem("ProtectYourPC", "3")
	w.close("OOBE")
	if o.AdminPassword != "" {
		w.open("UserAccounts")
		w.open("AdministratorPassword")
		w.elem("Value", HidePassword(o.AdminPassword, "AdministratorPassword"))
		w.elem("PlainText", "false")
		w.close("AdministratorPassword")
		w.close("UserAccounts")
	}
	w.close("component")
	w.close("settings")
	w.close("unattend")
	return w.b.Bytes(), nil
}

// addToCustom adds the continuation to a custom answer file, keeping every
// byte of it otherwise: a specialize RunSynchronousCommand (ordered after
// the file's own) for methods 0 and 2; nothing for SetupComplete.cmd; for
// AutoAdminLogon the file must bring its own AutoLogon.
func addToCustom(o Options) ([]byte, error) {
	doc := o.Custom
	if err := Check(doc); err != nil {
		return nil, deploy.Errorf(deploy.KindInvalid, "the custom unattend.xml is not a valid answer file: %v", err)
	}
	switch o.Method {
	case SetupComplete:
		return doc, nil
	case AutoAdminLogonOnce:
		if !bytes.Contains(doc, []byte("<AutoLogon")) {
			return nil, deploy.Errorf(deploy.KindInvalid, "ContinueMethod AutoAdminLogon with a custom unattend.xml: the file has no oobeSystem AutoLogon; add one or choose another method")
		}
		return doc, nil
	}
	p, err := locate(doc)
	if err != nil {
		return nil, err
	}
	var at int64
	switch {
	case p.runSyncEnd >= 0:
		at = p.runSyncEnd
	case p.deploymentEnd >= 0:
		at = p.deploymentEnd
	case p.specializeEnd >= 0:
		at = p.specializeEnd
	default:
		at = p.unattendEnd
	}
	// Insert on the closing tag's own line, indented one step more than it,
	// when that line holds only indentation.
	w := &writer{}
	if nl := bytes.LastIndexByte(doc[:at], '\n'); nl >= 0 && len(bytes.TrimSpace(doc[nl+1:at])) == 0 {
		w.prefix = string(doc[nl+1:at]) + "  "
		at = int64(nl + 1)
	}
	switch {
	case p.runSyncEnd >= 0:
		runSyncCommand(w, p.maxOrder+1, o.Command, "Continue the task sequence (Imprint)", true)
	case p.deploymentEnd >= 0:
		w.open("RunSynchronous")
		runSyncCommand(w, 1, o.Command, "Continue the task sequence (Imprint)", true)
		w.close("RunSynchronous")
	case p.specializeEnd >= 0:
		w.component("Microsoft-Windows-Deployment", o.Arch)
		w.open("RunSynchronous")
		runSyncCommand(w, 1, o.Command, "Continue the task sequence (Imprint)", false)
		w.close("RunSynchronous")
		w.close("component")
	default:
		w.line(`<settings pass="specialize">`)
		w.indent++
		w.component("Microsoft-Windows-Deployment", o.Arch)
		w.open("RunSynchronous")
		runSyncCommand(w, 1, o.Command, "Continue the task sequence (Imprint)", false)
		w.close("RunSynchronous")
		w.close("component")
		w.close("settings")
	}
	out := make([]byte, 0, len(doc)+w.b.Len())
	out = append(out, doc[:at]...)
	out = append(out, w.b.Bytes()...)
	return append(out, doc[at:]...), nil
}

// places are byte offsets in a custom answer file (-1: absent): where the
// closing tags of the elements the continuation goes into start.
type places struct {
	unattendEnd, specializeEnd, deploymentEnd, runSyncEnd int64
	maxOrder                                              int
}

func locate(doc []byte) (places, error) {
	p := places{-1, -1, -1, -1, 0}
	d := xml.NewDecoder(bytes.NewReader(doc))
	var stack []string
	inSpecialize, inDeployment, inRunSync, inOrder := false, false, false, false
	for {
		before := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return p, deploy.Errorf(deploy.KindInvalid, "the custom unattend.xml does not parse: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			switch {
			case len(stack) == 2 && t.Name.Local == "settings" && attr(t, "pass") == "specialize":
				inSpecialize = true
			case len(stack) == 3 && inSpecialize && t.Name.Local == "component" && attr(t, "name") == "Microsoft-Windows-Deployment":
				inDeployment = true
			case len(stack) == 4 && inDeployment && t.Name.Local == "RunSynchronous":
				inRunSync = true
			case len(stack) == 6 && inRunSync && t.Name.Local == "Order":
				inOrder = true
			}
		case xml.CharData:
			if inOrder {
				if n, err := strconv.Atoi(strings.TrimSpace(string(t))); err == nil && n > p.maxOrder {
					p.maxOrder = n
				}
			}
		case xml.EndElement:
			selfClosing := d.InputOffset() == before
			depth := len(stack)
			stack = stack[:len(stack)-1]
			switch {
			case depth == 6 && inOrder:
				inOrder = false
			case depth == 4 && inRunSync:
				inRunSync, p.runSyncEnd = false, before
			case depth == 3 && inDeployment:
				inDeployment, p.deploymentEnd = false, before
			case depth == 2 && inSpecialize:
				inSpecialize, p.specializeEnd = false, before
			case depth == 1:
				p.unattendEnd = before
			default:
				continue
			}
			if selfClosing {
				return p, deploy.Errorf(deploy.KindInvalid, "the custom unattend.xml has an empty <%s/> where the continuation goes; write it with a closing tag or remove it", t.Name.Local)
			}
		}
	}
	return p, nil
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// Check parses an answer file and checks its shape: an <unattend> root in
// the unattend namespace, <settings> with a known pass, and components
// with a name, an architecture and Microsoft's public key token.
func Check(doc []byte) error {
	d := xml.NewDecoder(bytes.NewReader(doc))
	depth, root := 0, false
	seen := map[string]bool{}
	pass := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				if t.Name.Local != "unattend" || t.Name.Space != nsUnattend {
					return fmt.Errorf("the root element is <%s> in %q, not <unattend> in %s", t.Name.Local, t.Name.Space, nsUnattend)
				}
				root = true
			case 2:
				if t.Name.Local != "settings" {
					continue
				}
				pass = attr(t, "pass")
				switch pass {
				case "windowsPE", "offlineServicing", "generalize", "specialize", "auditSystem", "auditUser", "oobeSystem":
				default:
					return fmt.Errorf("<settings pass=%q> is not a Windows Setup pass", pass)
				}
			case 3:
				if t.Name.Local != "component" {
					continue
				}
				name := attr(t, "name")
				if name == "" || attr(t, "processorArchitecture") == "" || attr(t, "publicKeyToken") != "31bf3856ad364e35" {
					return fmt.Errorf("component %q in pass %s lacks its name, processorArchitecture or publicKeyToken", name, pass)
				}
				key := pass + "/" + name + "/" + attr(t, "processorArchitecture")
				if seen[key] {
					return fmt.Errorf("component %s appears twice in pass %s", name, pass)
				}
				seen[key] = true
			}
		case xml.EndElement:
			depth--
		}
	}
	if !root {
		return fmt.Errorf("no <unattend> element: not an answer file")
	}
	return nil
}
