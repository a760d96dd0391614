package agent

import (
	"context"
	"fmt"
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
			_, err = a.getToken(ctx, client.TokenRequest{Method: "anonymous", Device: dev})
		case "certificate":
			if !a.ClientCert {
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
	cfg := entra.Config{TenantID: es.TenantID, ClientID: es.ClientID, Authority: es.Authority}
	dc, err := entra.StartDeviceCode(ctx, a.HTTPClient, cfg, es.Scope)
	if err != nil {
		return err
	}
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
