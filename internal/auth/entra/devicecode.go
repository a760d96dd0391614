package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Device-code outcomes the agent shows differently; test with errors.Is.
var (
	ErrDeviceCodeExpired = errors.New("the device code expired before sign-in completed; start again")
	ErrDeviceCodeDenied  = errors.New("sign-in was declined by the user or refused by policy")
)

// slowDownStep is what RFC 8628 §3.5 adds to the interval on slow_down.
const slowDownStep = 5 * time.Second

// defaultInterval is RFC 8628's default polling interval.
const defaultInterval = 5 * time.Second

// maxOAuthBytes bounds responses from the device-code and token endpoints.
const maxOAuthBytes = 64 << 10

// DeviceCode is a pending device authorization: show UserCode and
// VerificationURI (or Message) on the console, then call Poll.
type DeviceCode struct {
	UserCode        string
	VerificationURI string
	Message         string        // Entra's ready-made instruction text
	Interval        time.Duration // current polling interval
	ExpiresIn       time.Duration // lifetime granted by the tenant
	ExpiresAt       time.Time     // Now() at issue + ExpiresIn

	// Now and Sleep are injectable for tests; Sleep must return ctx.Err()
	// when ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	deviceCode string
	clientID   string
	tokenURL   string
}

// StartDeviceCode asks the tenant for a device code for scope (for example
// "api://<app-id>/.default"). A nil httpClient means http.DefaultClient.
func StartDeviceCode(ctx context.Context, httpClient *http.Client, cfg Config, scope string) (*DeviceCode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(scope) == "" {
		return nil, errors.New("device code: scope is required (e.g. api://<app-id>/.default)")
	}
	form := url.Values{"client_id": {cfg.ClientID}, "scope": {scope}}
	var resp struct {
		DeviceCode      string `json:"device_code"`
		UserCode        string `json:"user_code"`
		VerificationURI string `json:"verification_uri"`
		ExpiresIn       int    `json:"expires_in"`
		Interval        int    `json:"interval"`
		Message         string `json:"message"`
	}
	status, oerr, err := postForm(ctx, httpClient, cfg.DeviceCodeURL(), form, &resp)
	if err != nil {
		return nil, fmt.Errorf("device code: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("device code: %s", oerr)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"device_code", resp.DeviceCode}, {"user_code", resp.UserCode}, {"verification_uri", resp.VerificationURI},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if resp.ExpiresIn <= 0 {
		missing = append(missing, "expires_in")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("device code: response lacks %s", strings.Join(missing, ", "))
	}
	interval := time.Duration(resp.Interval) * time.Second
	if interval <= 0 {
		interval = defaultInterval
	}
	now := time.Now
	return &DeviceCode{
		UserCode:        resp.UserCode,
		VerificationURI: resp.VerificationURI,
		Message:         resp.Message,
		Interval:        interval,
		ExpiresIn:       time.Duration(resp.ExpiresIn) * time.Second,
		ExpiresAt:       now().Add(time.Duration(resp.ExpiresIn) * time.Second),
		Now:             now,
		Sleep:           sleep,
		deviceCode:      resp.DeviceCode,
		clientID:        cfg.ClientID,
		tokenURL:        cfg.TokenURL(),
	}, nil
}

// Poll waits Interval between token requests until the user signs in, and
// returns the access token. It stops with ErrDeviceCodeExpired at ExpiresAt
// or on expired_token, with ErrDeviceCodeDenied on access_denied or
// authorization_declined, and adds 5 s to Interval on slow_down.
func (d *DeviceCode) Poll(ctx context.Context, httpClient *http.Client) (string, error) {
	form := url.Values{
		"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
		"client_id":   {d.clientID},
		"device_code": {d.deviceCode},
	}
	for {
		if !d.Now().Before(d.ExpiresAt) {
			return "", ErrDeviceCodeExpired
		}
		if err := d.Sleep(ctx, d.Interval); err != nil {
			return "", fmt.Errorf("device code poll: %w", err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		status, oerr, err := postForm(ctx, httpClient, d.tokenURL, form, &tok)
		if err != nil {
			return "", fmt.Errorf("device code poll: %w", err)
		}
		if status == http.StatusOK {
			if tok.AccessToken == "" {
				return "", errors.New("device code poll: token response has no access_token")
			}
			return tok.AccessToken, nil
		}
		switch oerr.Code {
		case "authorization_pending":
		case "slow_down":
			d.Interval += slowDownStep
		case "expired_token":
			return "", ErrDeviceCodeExpired
		case "access_denied", "authorization_declined":
			return "", fmt.Errorf("%w: %s", ErrDeviceCodeDenied, oerr.Description)
		default:
			return "", fmt.Errorf("device code poll: %s", oerr)
		}
	}
}

// oauthError is an OAuth 2.0 error response (RFC 6749 §5.2).
type oauthError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e oauthError) String() string {
	if e.Code == "" {
		return fmt.Sprintf("status %d with no OAuth error", e.Status)
	}
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// postForm posts form and decodes a 200 body into out, or any other status
// into an oauthError.
func postForm(ctx context.Context, c *http.Client, endpoint string, form url.Values, out any) (int, oauthError, error) {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, oauthError{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, oauthError{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOAuthBytes))
	if err != nil {
		return 0, oauthError{}, fmt.Errorf("read %s: %w", endpoint, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			return 0, oauthError{}, fmt.Errorf("decode %s: %w", endpoint, err)
		}
		return resp.StatusCode, oauthError{}, nil
	}
	oe := oauthError{Status: resp.StatusCode}
	_ = json.Unmarshal(body, &oe) // a non-JSON error body leaves Code empty
	return resp.StatusCode, oe, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
