package entratest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// userCodeAlphabet is RFC 8628's suggested consonant-only alphabet.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// SetDeviceTiming sets the interval and expires_in (seconds) that new device
// codes get.
func (i *Issuer) SetDeviceTiming(intervalSec, expiresInSec int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.interval, i.expiresIn = intervalSec, expiresInSec
}

// Approve completes the sign-in for userCode: the next poll returns a token
// minted from claims.
func (i *Issuer) Approve(userCode string, claims jwt.MapClaims) {
	tok := i.Mint(claims)
	i.withDevice(userCode, func(d *device) { d.state, d.token = "approved", tok })
}

// Deny makes the next poll for userCode answer authorization_declined, as
// Entra does when the user declines.
func (i *Issuer) Deny(userCode string) {
	i.withDevice(userCode, func(d *device) { d.state = "denied" })
}

// Expire makes the next poll for userCode answer expired_token.
func (i *Issuer) Expire(userCode string) {
	i.withDevice(userCode, func(d *device) { d.state = "expired" })
}

// SlowDown makes the next n polls for userCode answer slow_down.
func (i *Issuer) SlowDown(userCode string, n int) {
	i.withDevice(userCode, func(d *device) { d.slowDown = n })
}

// Polls counts token requests made for userCode.
func (i *Issuer) Polls(userCode string) int {
	n := 0
	i.withDevice(userCode, func(d *device) { n = d.polls })
	return n
}

func (i *Issuer) withDevice(userCode string, f func(*device)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	d, ok := i.devices[i.byUser[userCode]]
	if !ok {
		panic(fmt.Sprintf("entratest: no device code with user code %q", userCode))
	}
	f(d)
}

func (i *Issuer) serveDeviceCode(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("tenant") != i.Tenant {
		oauthErr(w, http.StatusBadRequest, "invalid_tenant", "tenant not found")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") == "" || r.PostForm.Get("scope") == "" {
		oauthErr(w, http.StatusBadRequest, "invalid_request", "client_id and scope are required")
		return
	}
	uc := userCode()
	i.mu.Lock()
	i.nextID++
	dc := fmt.Sprintf("device-%d-%s", i.nextID, randomID("dc"))
	i.devices[dc] = &device{clientID: r.PostForm.Get("client_id"), userCode: uc, state: "pending"}
	i.byUser[uc] = dc
	interval, expires := i.interval, i.expiresIn
	i.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":      dc,
		"user_code":        uc,
		"verification_uri": "https://microsoft.com/devicelogin",
		"expires_in":       expires,
		"interval":         interval,
		"message":          "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code " + uc + " to authenticate.",
	})
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("tenant") != i.Tenant {
		oauthErr(w, http.StatusBadRequest, "invalid_tenant", "tenant not found")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthErr(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:device_code" {
		oauthErr(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+g)
		return
	}
	i.mu.Lock()
	d, ok := i.devices[r.PostForm.Get("device_code")]
	if !ok || d.clientID != r.PostForm.Get("client_id") {
		i.mu.Unlock()
		oauthErr(w, http.StatusBadRequest, "bad_verification_code", "unknown device code or client")
		return
	}
	d.polls++
	state, tok := d.state, d.token
	if d.slowDown > 0 {
		d.slowDown--
		state = "slow_down"
	}
	i.mu.Unlock()
	switch state {
	case "pending":
		oauthErr(w, http.StatusBadRequest, "authorization_pending", "the user has not signed in yet")
	case "slow_down":
		oauthErr(w, http.StatusBadRequest, "slow_down", "polling too fast")
	case "denied":
		oauthErr(w, http.StatusBadRequest, "authorization_declined", "the user declined")
	case "expired":
		oauthErr(w, http.StatusBadRequest, "expired_token", "the device code expired")
	case "approved":
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "access_token": tok, "expires_in": 3600})
	}
}

func oauthErr(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func userCode() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(userCodeAlphabet[int(c)%len(userCodeAlphabet)])
	}
	return sb.String()
}

func headerOf(tok string) string  { return strings.SplitN(tok, ".", 3)[0] }
func payloadOf(tok string) string { return strings.SplitN(tok, ".", 3)[1] }
func sigOf(tok string) string     { return strings.SplitN(tok, ".", 3)[2] }
