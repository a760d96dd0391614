package disksteps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/unattend"
)

// Variables Apply operating system and Enable Administrator account set
// for Prepare operating system, which writes the answer file.
const (
	VarContinueMethod = "OSContinueMethod"
	VarUnattendFile   = "OSUnattendFile"
	VarEnableAdmin    = "OSEnableAdministrator"
	// VarDomainJoinBlob holds offline domain join provisioning data
	// (djoin /provision or `net offlinejoin provision` output).
	VarDomainJoinBlob = "OfflineDomainJoinBlob"
)

// RecordWindowsOptions keeps Apply operating system's Windows options
// (ContinueMethod, the custom Unattend file) for Prepare operating system.
func RecordWindowsOptions(env *sequence.Env) error {
	m := strings.TrimSpace(env.Setting("ContinueMethod"))
	if _, err := unattend.ParseMethod(m); err != nil {
		return err
	}
	env.Vars.SetInternal(VarContinueMethod, m)
	for k, p := range env.Content {
		if strings.EqualFold(k, "Unattend") && p != "" {
			env.Vars.SetInternal(VarUnattendFile, p)
		}
	}
	return nil
}

// AnswerOptions gathers the answer file's settings from the variables
// DeployR uses (OSDComputerName, TimeZone, SystemLocale, UserLocale,
// UILanguage, InputLocale, ProductKey, RegisteredOwner,
// RegisteredOrganization, AdminPassword, OfflineDomainJoinBlob) and what
// Apply operating system recorded.
func AnswerOptions(env *sequence.Env) (unattend.Options, error) {
	v := func(name string) string { return strings.TrimSpace(env.Vars.Value(name)) }
	m, err := unattend.ParseMethod(v(VarContinueMethod))
	if err != nil {
		return unattend.Options{}, err
	}
	o := unattend.Options{
		ComputerName: v("OSDComputerName"), TimeZone: v("TimeZone"),
		SystemLocale: v("SystemLocale"), UserLocale: v("UserLocale"), UILanguage: v("UILanguage"), InputLocale: v("InputLocale"),
		ProductKey: v("ProductKey"), Owner: v("RegisteredOwner"), Organization: v("RegisteredOrganization"),
		Method: m,
	}
	if strings.EqualFold(v("Architecture"), "arm64") {
		o.Arch = "arm64"
	}
	// The Administrator is enabled by Enable Administrator account, or
	// logged on by the AutoAdminLogon method; AdminPassword alone does not.
	if strings.EqualFold(v(VarEnableAdmin), "true") || m == unattend.AutoAdminLogonOnce {
		o.AdminPassword = env.Vars.Value("AdminPassword")
		if o.AdminPassword == "" {
			return o, deploy.Errorf(deploy.KindInvalid, "the Administrator account is to be enabled but the AdminPassword variable is empty")
		}
	}
	if b := v(VarDomainJoinBlob); b != "" {
		if o.DomainJoinBlob, err = unattend.DomainJoinBlob([]byte(b)); err != nil {
			return o, err
		}
	}
	if p := v(VarUnattendFile); p != "" {
		if o.Custom, err = readCustomUnattend(p); err != nil {
			return o, err
		}
	}
	return o, nil
}

// readCustomUnattend reads the Unattend content: a file, or a folder with
// one .xml file in it.
func readCustomUnattend(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("custom unattend.xml: %w", err)
	}
	if fi.IsDir() {
		xmls, _ := filepath.Glob(filepath.Join(p, "*.xml"))
		if len(xmls) != 1 {
			return nil, deploy.Errorf(deploy.KindInvalid, "the Unattend content holds %d .xml files; it must hold exactly one answer file", len(xmls))
		}
		p = xmls[0]
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("custom unattend.xml: %w", err)
	}
	return b, nil
}

// EnableAdmin is the Enable Administrator account step in the boot
// image: it records that the answer file must enable the built-in
// Administrator with AdminPassword (its option, else the variable).
type EnableAdmin struct{}

// Run records the request; Prepare operating system acts on it.
func (EnableAdmin) Run(_ context.Context, env *sequence.Env) (sequence.Result, error) {
	if pw := env.Setting("AdminPassword"); pw != "" {
		env.Vars.SetInternalSecret("AdminPassword", pw)
	}
	if env.Vars.Value("AdminPassword") == "" {
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "Enable Administrator account needs a password: set its Password option or the AdminPassword variable")
	}
	env.Vars.SetInternal(VarEnableAdmin, "true")
	msg := "The answer file will enable the built-in Administrator account (password hidden as Windows Setup expects)"
	fmt.Fprintln(env.Log, msg)
	return sequence.Result{Output: msg}, nil
}

// OfflineDomainJoin is the Offline domain join step in the boot image. The
// provisioning data (a blob from `djoin /provision` or Samba's `net
// offlinejoin provision`, made where a domain controller is reachable) comes
// in the OfflineDomainJoinBlob variable; the step checks it, keeps it as a
// secret variable and makes the computer name match the account it was
// made for. Prepare operating system puts it in the answer file.
type OfflineDomainJoin struct{}

// Run checks and records the provisioning data.
func (OfflineDomainJoin) Run(_ context.Context, env *sequence.Env) (sequence.Result, error) {
	raw := env.Vars.Value(VarDomainJoinBlob)
	if strings.TrimSpace(raw) == "" {
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "Offline domain join needs provisioning data in the %s variable "+
			"(made by `djoin /provision` or `net offlinejoin provision` for this computer's account); the boot image cannot make it", VarDomainJoinBlob)
	}
	blob, err := unattend.DomainJoinBlob([]byte(raw))
	if err != nil {
		return sequence.Result{}, err
	}
	env.Vars.SetInternalSecret(VarDomainJoinBlob, blob)
	name := strings.TrimSpace(env.Setting("ComputerName"))
	if name != "" {
		if err := unattend.ComputerName(name); err != nil {
			return sequence.Result{}, err
		}
		// The blob is for one computer account: the installation must take
		// that account's name.
		env.Vars.SetInternal("OSDComputerName", name)
	}
	msg := fmt.Sprintf("The answer file will join %s offline", strings.TrimSpace(env.Setting("DomainName")))
	if name != "" {
		msg += " as " + name
	}
	fmt.Fprintln(env.Log, msg)
	return sequence.Result{Output: msg}, nil
}
