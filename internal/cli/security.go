package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/wire"
)

const usageSecurity = `usage: imprint security SUBCOMMAND [flags]

Clients authenticate in this order, using the first mode that is on:
anonymous → certificate → Entra ID → passcode. While Entra ID or
certificates are on, the server refuses the passcode (the boot image is
never offered it); 'set passcode-alongside on' lets an agent in an
installed OS still use it.

Subcommands:
  show                      the mode order (installed OS and boot image),
                            each mode on or off, and what is missing
  set anonymous on|off [--from CIDR]...
                            anyone who reaches the server (from those
                            networks, e.g. a lab VLAN) may deploy (lab only)
  set entra --tenant GUID --client GUID [--audience URI] [--role NAME]
            [--authority URL]
                            turn Entra ID on: the directory (tenant) id, the
                            app registration's client id, the accepted token
                            audience (default the client id), a required app
                            role, and the identity platform (default
                            https://login.microsoftonline.com)
  set passcode-alongside on|off
                            accept the passcode from an installed OS while
                            Entra ID or certificates are on (default off)
  set secure-boot on|off    network boot of UEFI machines (imprint server
                            --pxe) through the signed chain: Debian's shim
                            (signed by Microsoft's UEFI CA), signed GRUB and
                            signed kernel, which machines with Secure Boot
                            on accept (default on; it boots machines with
                            Secure Boot off too). Off, they get iPXE.
  clear entra               turn Entra ID off

Certificate authentication is set when the server starts (imprint server
--client-ca FILE --crl FILE); passcodes with 'imprint passcode'.
`

func runSecurity(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "security", args, map[string]func(context.Context, *app, []string) error{
		"show":  securityShow,
		"set":   securitySet,
		"clear": securityClear,
	}, usageSecurity)
}

func securityShow(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint security show", usageSecurity)
	_, c, err := a.connect(fs, args, 0, 0)
	if err != nil {
		return err
	}
	sec, err := c.Security(ctx)
	if err != nil {
		return fmt.Errorf("security show: %w", err)
	}
	return a.printSecurity(sec)
}

func securitySet(ctx context.Context, a *app, args []string) error {
	hint := "run 'imprint security -h' for usage"
	if len(args) == 0 {
		return usagef("security set: say what to set: anonymous, entra, passcode-alongside or secure-boot", hint)
	}
	switch args[0] {
	case "secure-boot":
		return a.setSwitch(ctx, args, func(c *client.Admin, on bool, from []string) (*wire.Security, error) {
			if len(from) > 0 {
				return nil, usagef("security set secure-boot: --from goes with anonymous only", hint)
			}
			return c.SetSecureBoot(ctx, on)
		}, "")
	case "passcode-alongside":
		return a.setSwitch(ctx, args, func(c *client.Admin, on bool, from []string) (*wire.Security, error) {
			if len(from) > 0 {
				return nil, usagef("security set passcode-alongside: --from goes with anonymous only", hint)
			}
			return c.SetPasscodeAlongside(ctx, on)
		}, "")
	case "anonymous":
		return a.setSwitch(ctx, args, func(c *client.Admin, on bool, from []string) (*wire.Security, error) {
			if !on && len(from) > 0 {
				return nil, usagef("security set anonymous off: --from goes with on", hint)
			}
			return c.SetAnonymous(ctx, on, from...)
		}, "WARNING: anonymous authentication is on: anyone who can reach this server (from the networks given) can run any task sequence.")
	case "entra":
		fs := a.flagSet("imprint security set entra", usageSecurity)
		var cfg wire.EntraConfig
		fs.StringVar(&cfg.TenantID, "tenant", "", "")
		fs.StringVar(&cfg.ClientID, "client", "", "")
		fs.StringVar(&cfg.Audience, "audience", "", "")
		fs.StringVar(&cfg.RequiredRole, "role", "", "")
		fs.StringVar(&cfg.Authority, "authority", "", "")
		if _, err := a.parse(fs, args[1:], 0, 0); err != nil {
			return err
		}
		switch {
		case cfg.TenantID == "":
			return usagef("security set entra: --tenant is required (the directory id, a GUID)", hint)
		case cfg.ClientID == "":
			return usagef("security set entra: --client is required (the application id of the app registration)", hint)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		sec, err := c.SetEntra(ctx, cfg)
		if err != nil {
			return fmt.Errorf("security set entra: %w", err)
		}
		return a.printSecurity(sec)
	}
	return usagef(fmt.Sprintf("security set: unknown setting %q (one of: anonymous, entra, passcode-alongside, secure-boot)", args[0]), hint)
}

// setSwitch runs `security set NAME on|off` (args[0] is NAME) with set;
// warnOn is printed when the switch is turned on.
func (a *app) setSwitch(ctx context.Context, args []string, set func(c *client.Admin, on bool, from []string) (*wire.Security, error), warnOn string) error {
	name := args[0]
	fs := a.flagSet("imprint security set "+name, usageSecurity)
	var from listFlag
	fs.Var(&from, "from", "")
	pos, err := a.parse(fs, args[1:], 1, 1)
	if err != nil {
		return err
	}
	on, ok := map[string]bool{"on": true, "off": false}[strings.ToLower(pos[0])]
	if !ok {
		return usagef(fmt.Sprintf("security set %s: %q is not on or off", name, pos[0]), "run 'imprint security -h' for usage")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	sec, err := set(c, on, from)
	var u *usageError
	if errors.As(err, &u) {
		return err
	}
	if err != nil {
		return fmt.Errorf("security set %s: %w", name, err)
	}
	if on && warnOn != "" && !a.jsonOut {
		fmt.Fprintln(a.stderr, warnOn)
	}
	return a.printSecurity(sec)
}

func securityClear(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint security clear", usageSecurity)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if pos[0] != "entra" {
		return usagef(fmt.Sprintf("security clear: unknown setting %q (only entra can be cleared; anonymous is 'set anonymous off')", pos[0]), "")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	sec, err := c.ClearEntra(ctx)
	if err != nil {
		return fmt.Errorf("security clear entra: %w", err)
	}
	return a.printSecurity(sec)
}

// printSecurity prints the mode order, each mode and what is missing.
func (a *app) printSecurity(sec *wire.Security) error {
	if a.jsonOut {
		return a.printJSON(sec)
	}
	order := func(m []string) string {
		if len(m) == 0 {
			return "none: clients are refused"
		}
		return strings.Join(m, " → ")
	}
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	entra := "off"
	if e := sec.Entra; e != nil {
		entra = "on (tenant " + e.TenantID + ", client " + e.ClientID
		if e.Audience != "" {
			entra += ", audience " + e.Audience
		}
		if e.RequiredRole != "" {
			entra += ", role " + e.RequiredRole
		}
		if e.Authority != "" {
			entra += ", authority " + e.Authority
		}
		entra += ")"
	}
	if err := fields(a.stdout, [][2]string{
		{"Installed OS", order(sec.Methods)},
		{"Boot image", order(sec.BootImageMethods)},
	}); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "\nModes:")
	if err := table(a.stdout, [][]string{
		{"  anonymous", onOff(sec.Anonymous) + map[bool]string{true: " (from " + strings.Join(sec.AnonymousFrom, ", ") + " only)"}[len(sec.AnonymousFrom) > 0]},
		{"  certificate", onOff(sec.Certificate)},
		{"  entra", entra},
		{"  passcode", onOff(sec.Passcode) + map[bool]string{true: " (also alongside Entra ID or certificates)"}[sec.PasscodeAlongside]},
		{"  secure boot", onOff(sec.SecureBoot) + map[bool]string{true: " (network boot: shim, signed GRUB, signed kernel)"}[sec.SecureBoot && sec.SecureBootReady]},
	}); err != nil {
		return err
	}
	if len(sec.Missing) > 0 {
		fmt.Fprintln(a.stdout, "\nMissing:")
		for _, m := range sec.Missing {
			fmt.Fprintf(a.stdout, "  - %s\n", safe(oneLine(m)))
		}
	}
	return nil
}
