package accesstoken_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/auth/entra/accesstoken"
	"github.com/imprint-osd/imprint/internal/auth/entra/entratest"
)

func mustAccept(t *testing.T, v *accesstoken.Validator, tok string) {
	t.Helper()
	if _, err := v.Validate(context.Background(), tok); err != nil {
		t.Fatalf("rejected a good token: %v", err)
	}
}

func mustReject(t *testing.T, v *accesstoken.Validator, tok, reason string) {
	t.Helper()
	_, err := v.Validate(context.Background(), tok)
	if got := wantRejected(t, err); got != reason {
		t.Fatalf("reason = %q, want %q (%v)", got, reason, err)
	}
}

func wantFetches(t *testing.T, idp *entratest.Issuer, want int) {
	t.Helper()
	if got := idp.JWKSFetches(); got != want {
		t.Fatalf("JWKS fetches = %d, want %d", got, want)
	}
}

func TestJWKSFetchedOnceForManyValidations(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	v := newValidator(t, idp, clk)
	tok := idp.Mint(idp.Claims(clientID, clk.Now(), role))
	wantFetches(t, idp, 0) // lazy
	for range 50 {
		mustAccept(t, v, tok)
	}
	wantFetches(t, idp, 1)
}

func TestJWKSConcurrentColdStartFetchesOnce(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	v := newValidator(t, idp, clk)
	tok := idp.Mint(idp.Claims(clientID, clk.Now(), role))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			if _, err := v.Validate(context.Background(), tok); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("rejected: %v", err)
	}
	wantFetches(t, idp, 1)
}

func TestJWKSUnknownKidRefetchIsRateLimited(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	v := newValidator(t, idp, clk)
	claims := idp.Claims(clientID, clk.Now(), role)
	mustAccept(t, v, idp.Mint(claims))
	wantFetches(t, idp, 1)

	// Inside the window right after the first fetch: no refetch at all.
	mustReject(t, v, idp.MintUnknownKid(claims), accesstoken.ReasonUnknownKey)
	wantFetches(t, idp, 1)

	// Past the window: the first unknown kid refetches, the next ones do not.
	clk.Advance(entra.DefaultMinRefetch)
	for range 100 {
		mustReject(t, v, idp.MintUnknownKid(claims), accesstoken.ReasonUnknownKey)
	}
	wantFetches(t, idp, 2)
	mustAccept(t, v, idp.Mint(claims)) // known keys unaffected
	wantFetches(t, idp, 2)
}

func TestJWKSKeyRotation(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	v := newValidator(t, idp, clk)
	oldTok := idp.Mint(idp.Claims(clientID, clk.Now(), role))
	mustAccept(t, v, oldTok)

	idp.RotateKey(false) // emergency rollover: the old key is withdrawn
	clk.Advance(time.Minute)
	newTok := idp.Mint(idp.Claims(clientID, clk.Now(), role))
	mustReject(t, v, newTok, accesstoken.ReasonUnknownKey) // inside MinRefetch
	wantFetches(t, idp, 1)

	clk.Advance(entra.DefaultMinRefetch)
	mustAccept(t, v, newTok)
	wantFetches(t, idp, 2)
	mustReject(t, v, oldTok, accesstoken.ReasonUnknownKey) // withdrawn key no longer trusted
}

func TestJWKSDownKeepsCachedKeys(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	v := newValidator(t, idp, clk)
	claims := idp.Claims(clientID, clk.Now(), role)
	mustAccept(t, v, idp.Mint(claims))

	idp.SetJWKSDown(true)
	clk.Advance(entra.DefaultMinRefetch)
	mustReject(t, v, idp.MintUnknownKid(claims), accesstoken.ReasonUnknownKey) // triggers a failing fetch
	wantFetches(t, idp, 2)
	mustAccept(t, v, idp.Mint(claims))
}

func TestJWKSDownAtStartupRetriesSooner(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	v := newValidator(t, idp, clk)
	tok := idp.Mint(idp.Claims(clientID, clk.Now(), role))

	idp.SetJWKSDown(true)
	mustReject(t, v, tok, accesstoken.ReasonUnknownKey)
	idp.SetJWKSDown(false)
	clk.Advance(10 * time.Second)
	mustReject(t, v, tok, accesstoken.ReasonUnknownKey) // still inside the retry window
	wantFetches(t, idp, 1)
	clk.Advance(30 * time.Second) // well before MinRefetch, since nothing is cached
	mustAccept(t, v, tok)
	wantFetches(t, idp, 2)
}
