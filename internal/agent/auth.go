package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// DefaultPasscodeTries is how often a wrong passcode may be entered.
const DefaultPasscodeTries = 5

// authenticate tries the server's methods in its order (the boot image's
// list in the boot image) until one gives a session.
func (a *Agent) authenticate(ctx context.Context, dev client.DeviceInfo) error {
	am, err := a.Client.AuthMethods(ctx)
	if err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	methods := am.Methods
	if a.BootImage && len(am.BootImageMethods) > 0 {
		methods = am.BootImageMethods
	}
	methods = passcodeVarFirst(methods, a.vars != nil && a.vars.Value("Passcode") != "")
	if len(methods) == 0 {
		msg := "the server accepts no authentication method"
		if am.Hint != "" {
			msg += ": " + am.Hint
		}
		return deploy.Errorf(deploy.KindUnavailable, "%s", msg)
	}
	var errs []string
	for _, m := range methods {
		var err error
		switch strings.ToLower(m) {
		case "anonymous":
			if _, err = a.getToken(ctx, client.TokenRequest{Method: "anonymous", Device: dev}); err == nil {
				// security.md GN-1: whoever stands at the console should
				// know this server asks nobody for anything.
				a.Console.Printf("WARNING: this server lets anyone deploy: anonymous authentication is on.\n")
			}
		case "certificate":
			if !a.hasClientCert() {
				continue
			}
			_, err = a.getToken(ctx, client.TokenRequest{Method: "certificate", Device: dev})
		case "entra":
			err = a.entraLogin(ctx, am.Entra, dev)
		case "passcode":
			err = a.passcodeLogin(ctx, dev)
		default:
			continue
		}
		if err == nil {
			a.logf(SevInfo, "Authenticated with method %s", m)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.logf(SevWarning, "Authentication with %s failed: %v", m, err)
		errs = append(errs, m+": "+err.Error())
	}
	return deploy.Errorf(deploy.KindUnauthorized, "authentication failed (%s)", strings.Join(errs, "; "))
}

func (a *Agent) entraLogin(ctx context.Context, es *client.EntraSettings, dev client.DeviceInfo) error {
	if es == nil {
		return fmt.Errorf("server offers entra without its settings")
	}
	cfg := entra.Config{TenantID: es.TenantID, ClientID: es.ClientID, Authority: entraAuthority(es)}
	dc, err := entra.StartDeviceCode(ctx, a.HTTPClient, cfg, es.Scope)
	if err != nil {
		return err
	}
	dc.Sleep, dc.Now = a.sleep, a.now
	dc.ExpiresAt = a.now().Add(dc.ExpiresIn)
	if dc.Message != "" {
		a.Console.Printf("%s\n", dc.Message)
	} else {
		a.Console.Printf("To sign in, open %s and enter the code %s\n", dc.VerificationURI, dc.UserCode)
	}
	tok, err := dc.Poll(ctx, a.HTTPClient)
	if err != nil {
		return err
	}
	_, err = a.getToken(ctx, client.TokenRequest{Method: "entra", AccessToken: tok, Device: dev})
	return err
}

// passcodeVarFirst moves passcode ahead of entra when the Passcode
// variable is set: a passcode the admin handed over is used at once, where
// the device-code flow would wait for someone to sign in at another device.
// Certificate and anonymous keep their place before both.
func passcodeVarFirst(methods []string, haveVar bool) []string {
	if !haveVar {
		return methods
	}
	e := slices.IndexFunc(methods, func(m string) bool { return strings.EqualFold(m, "entra") })
	p := slices.IndexFunc(methods, func(m string) bool { return strings.EqualFold(m, "passcode") })
	if e < 0 || p < e {
		return methods
	}
	out := slices.Clone(methods)
	out = slices.Delete(out, p, p+1)
	return slices.Insert(out, e, methods[p])
}

// entraAuthority is the identity platform's base URL. The server names the
// tenant's issuer ({authority}/{tenant}/v2.0) in its hints; entra.Config
// wants the base, to which it adds the tenant itself.
func entraAuthority(es *client.EntraSettings) string {
	a := strings.TrimRight(es.Authority, "/")
	if base, ok := strings.CutSuffix(strings.ToLower(a), "/"+strings.ToLower(es.TenantID)+"/v2.0"); ok && es.TenantID != "" {
		return a[:len(base)]
	}
	return a
}

// hasClientCert reports whether a client certificate is configured: the
// ClientCert field, or a client that says it presents one.
func (a *Agent) hasClientCert() bool {
	if a.ClientCert {
		return true
	}
	c, ok := a.Client.(interface{ HasClientCert() bool })
	return ok && c.HasClientCert()
}

// passcodeLogin uses the Passcode variable first, then prompts without
// echo; a wrong passcode prompts again, a throttled attempt waits for
// Retry-After.
func (a *Agent) passcodeLogin(ctx context.Context, dev client.DeviceInfo) error {
	tries := a.PasscodeTries
	if tries <= 0 {
		tries = DefaultPasscodeTries
	}
	pc := a.vars.Value("Passcode")
	fromVar := pc != ""
	defer a.Console.Hush()()
	for prompts := 0; ; {
		if pc == "" {
			if prompts >= tries {
				return deploy.Errorf(deploy.KindUnauthorized, "no valid passcode after %d attempts", tries)
			}
			prompts++
			s, err := a.Console.ReadSecret("Passcode: ")
			if err != nil {
				return fmt.Errorf("read passcode: %w", err)
			}
			if pc = strings.TrimSpace(s); pc == "" {
				continue
			}
		}
		_, err := a.getToken(ctx, client.TokenRequest{Method: "passcode", Passcode: pc, Device: dev})
		if err == nil {
			return nil
		}
		switch deploy.ErrorKind(err) {
		case deploy.KindUnauthorized:
			if fromVar {
				a.Console.Printf("The Passcode variable holds a wrong passcode.\n")
				fromVar = false
			} else {
				a.Console.Printf("Wrong passcode.\n")
			}
			pc = ""
		case deploy.KindThrottled:
			wait, _ := client.RetryAfter(err)
			if wait <= 0 {
				wait = 5 * time.Second
			}
			a.Console.Printf("Too many attempts; waiting %s before trying again.\n", wait.Round(time.Second))
			if err := a.sleep(ctx, wait); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// getToken asks for a session and remembers its token for the saved state.
func (a *Agent) getToken(ctx context.Context, req client.TokenRequest) (*client.TokenAnswer, error) {
	ans, err := a.Client.Token(ctx, req)
	if err == nil {
		a.token = ans.Token
		if a.st != nil {
			a.st.Token = ans.Token
		}
	}
	return ans, err
}
