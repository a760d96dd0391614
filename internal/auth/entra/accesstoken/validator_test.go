package accesstoken_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/auth/entra/accesstoken"
	"github.com/imprint-osd/imprint/internal/auth/entra/entratest"
	"github.com/imprint-osd/imprint/internal/deploy"
)

const (
	tenant      = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	otherTenant = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
	clientID    = "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5"
	role        = "Imprint.Deploy"
)

func config(idp *entratest.Issuer) entra.Config {
	return entra.Config{TenantID: tenant, ClientID: clientID, RequiredRole: role, Authority: idp.Authority()}
}

func newValidator(t *testing.T, idp *entratest.Issuer, clk *entratest.Clock) *accesstoken.Validator {
	t.Helper()
	cfg := config(idp)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	v := accesstoken.NewValidator(cfg, idp.Client())
	v.Now = clk.Now
	return v
}

// wantRejected checks the caller-safe shape of a rejection and returns its reason.
func wantRejected(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("token accepted, want rejected")
	}
	var re *accesstoken.RejectError
	if !errors.As(err, &re) {
		t.Fatalf("no *RejectError in %v", err)
	}
	// A genuine token of a user without the required role is forbidden
	// (EN-4) and says which role; every other refusal is one 401.
	wantKind, wantMsg := deploy.KindUnauthorized, accesstoken.RejectedMessage
	if re.Reason == accesstoken.ReasonMissingRole {
		wantKind, wantMsg = deploy.KindForbidden, accesstoken.RejectedMessage+`: the account is not assigned the app role "`+role+`" that this server requires; ask an administrator to assign it`
	}
	if k := deploy.ErrorKind(err); k != wantKind {
		t.Errorf("kind = %q, want %q (err %v)", k, wantKind, err)
	}
	if m := deploy.ErrorMessage(err); m != wantMsg {
		t.Errorf("caller message = %q, want %q", m, wantMsg)
	}
	return re.Reason
}

func TestValidateTokenTable(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	now := clk.Now()
	good := func() jwt.MapClaims { return idp.Claims(clientID, now, "Other.Role", role) }
	with := func(k string, v any) string {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return idp.Mint(c)
	}
	tests := []struct {
		name   string
		token  string
		reason string // "" = accepted
	}{
		{"good", idp.Mint(good()), ""},
		{"tid in upper case", with("tid", strings.ToUpper(tenant)), ""},
		{"expired 30s ago, within leeway", with("exp", now.Add(-30*time.Second).Unix()), ""},
		{"other tenant", with("tid", otherTenant), accesstoken.ReasonTenant},
		{"other tenant's issuer", with("iss", idp.Authority()+"/"+otherTenant+"/v2.0"), accesstoken.ReasonIssuer},
		{"v1 issuer", with("iss", "https://sts.windows.net/"+tenant+"/"), accesstoken.ReasonIssuer},
		{"common template issuer", with("iss", idp.Authority()+"/{tenantid}/v2.0"), accesstoken.ReasonIssuer},
		{"wrong issuer host", with("iss", "https://login.microsoftonline.com/"+tenant+"/v2.0"), accesstoken.ReasonIssuer},
		{"no issuer", with("iss", nil), accesstoken.ReasonClaims},
		{"other audience", with("aud", "api://someone-else"), accesstoken.ReasonAudience},
		{"graph audience", with("aud", entratest.GraphAudience), accesstoken.ReasonAudience},
		{"alg none", idp.MintAlgNone(good()), accesstoken.ReasonAlgorithm},
		{"HS256 keyed with the public key", idp.MintHS256WithPublicKey(good()), accesstoken.ReasonAlgorithm},
		{"expired", with("exp", now.Add(-time.Hour).Unix()), accesstoken.ReasonExpired},
		{"expired just beyond leeway", with("exp", now.Add(-accesstoken.Leeway-time.Second).Unix()), accesstoken.ReasonExpired},
		{"no exp", with("exp", nil), accesstoken.ReasonClaims},
		{"not yet valid", with("nbf", now.Add(10*time.Minute).Unix()), accesstoken.ReasonNotYetValid},
		{"issued in the future", with("iat", now.Add(10*time.Minute).Unix()), accesstoken.ReasonNotYetValid},
		{"unknown kid", idp.MintUnknownKid(good()), accesstoken.ReasonUnknownKey},
		{"no kid", idp.MintNoKid(good()), accesstoken.ReasonUnknownKey},
		{"missing role", idp.Mint(idp.Claims(clientID, now, "Other.Role")), accesstoken.ReasonMissingRole},
		{"no roles", idp.Mint(idp.Claims(clientID, now)), accesstoken.ReasonMissingRole},
		{"v1 version", with("ver", "1.0"), accesstoken.ReasonVersion},
		{"no oid", with("oid", nil), accesstoken.ReasonClaims},
		{"tampered payload", idp.MintTampered(idp.Claims(clientID, now), good()), accesstoken.ReasonSignature},
		{"expired and tampered", idp.MintTampered(idp.Claims(clientID, now), func() jwt.MapClaims {
			c := good()
			c["exp"] = now.Add(-time.Hour).Unix()
			return c
		}()), accesstoken.ReasonSignature},
		{"empty", "", accesstoken.ReasonMalformed},
		{"garbage", "not.a.jwt", accesstoken.ReasonMalformed},
		{"a megabyte of dots", strings.Repeat(".", 1<<20), accesstoken.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newValidator(t, idp, clk)
			id, err := v.Validate(context.Background(), tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("rejected a good token: %v", err)
				}
				want := &accesstoken.Identity{
					Subject:  "sub-alice",
					ObjectID: "11111111-2222-3333-4444-555555555555",
					Name:     "Alice Admin",
					UPN:      "alice@contoso.example",
					TenantID: id.TenantID, // checked case-insensitively below
					Roles:    []string{"Other.Role", role},
				}
				if diff := cmp.Diff(want, id); diff != "" {
					t.Errorf("identity (-want +got):\n%s", diff)
				}
				if !strings.EqualFold(id.TenantID, tenant) {
					t.Errorf("TenantID = %q, want %q", id.TenantID, tenant)
				}
				return
			}
			if got := wantRejected(t, err); got != tt.reason {
				t.Errorf("reason = %q, want %q (detail: %v)", got, tt.reason, err)
			}
		})
	}
}

func TestValidateAudienceAndUPNFallback(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	cfg := config(idp)
	cfg.Audience = "api://imprint"
	cfg.RequiredRole = ""
	v := accesstoken.NewValidator(cfg, idp.Client())
	v.Now = clk.Now

	c := idp.Claims("api://imprint", clk.Now())
	delete(c, "upn")
	id, err := v.Validate(context.Background(), idp.Mint(c))
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if id.UPN != "alice@contoso.example" {
		t.Errorf("UPN = %q, want preferred_username fallback", id.UPN)
	}
	// With Audience set, a token for the bare client id is someone else's.
	_, err = v.Validate(context.Background(), idp.Mint(idp.Claims(clientID, clk.Now())))
	if got := wantRejected(t, err); got != accesstoken.ReasonAudience {
		t.Errorf("reason = %q, want %q", got, accesstoken.ReasonAudience)
	}
}
