package entra_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/auth/entra/accesstoken"
	"github.com/imprint-osd/imprint/internal/auth/entra/entratest"
)

const scope = "api://imprint/.default"

// fakeSleep records requested sleeps, advances clk by each, and runs
// onSleep (with the 1-based call number) so a test can act mid-flow.
type fakeSleep struct {
	clk     *entratest.Clock
	onSleep func(n int)
	mu      sync.Mutex
	slept   []time.Duration
}

func (f *fakeSleep) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.slept = append(f.slept, d)
	n := len(f.slept)
	f.mu.Unlock()
	f.clk.Advance(d)
	if f.onSleep != nil {
		f.onSleep(n)
	}
	return ctx.Err()
}

func startDevice(t *testing.T, idp *entratest.Issuer, clk *entratest.Clock, onSleep func(int)) (*entra.DeviceCode, *fakeSleep) {
	t.Helper()
	dc, err := entra.StartDeviceCode(context.Background(), idp.Client(), config(idp), scope)
	if err != nil {
		t.Fatalf("StartDeviceCode: %v", err)
	}
	fs := &fakeSleep{clk: clk, onSleep: onSleep}
	dc.Now, dc.Sleep = clk.Now, fs.Sleep
	dc.ExpiresAt = clk.Now().Add(dc.ExpiresIn)
	return dc, fs
}

func TestDeviceCodePendingThenApproved(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	var dc *entra.DeviceCode
	dc, fs := startDevice(t, idp, clk, func(n int) {
		if n == 3 {
			idp.Approve(dc.UserCode, idp.Claims(clientID, clk.Now(), role))
		}
	})
	if dc.VerificationURI == "" || !strings.Contains(dc.Message, dc.UserCode) || len(dc.UserCode) != 8 {
		t.Errorf("device code not ready to show: %+v", dc)
	}
	if dc.Interval != 5*time.Second || dc.ExpiresIn != 15*time.Minute {
		t.Errorf("interval %v, expires in %v; want 5s, 15m", dc.Interval, dc.ExpiresIn)
	}
	tok, err := dc.Poll(context.Background(), idp.Client())
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second}, fs.slept); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
	if got := idp.Polls(dc.UserCode); got != 3 {
		t.Errorf("polls = %d, want 3 (two pending, one approved)", got)
	}
	// The token the agent gets is one the server accepts.
	v := accesstoken.NewValidator(config(idp), idp.Client())
	v.Now = clk.Now
	id, err := v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatalf("server rejected the device-flow token: %v", err)
	}
	if id.UPN != "alice@contoso.example" {
		t.Errorf("UPN = %q", id.UPN)
	}
}

func TestDeviceCodeSlowDown(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	dc, fs := startDevice(t, idp, clk, nil)
	idp.SlowDown(dc.UserCode, 2)
	idp.Approve(dc.UserCode, idp.Claims(clientID, clk.Now(), role))
	if _, err := dc.Poll(context.Background(), idp.Client()); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second}, fs.slept); diff != "" {
		t.Errorf("sleeps after slow_down (-want +got):\n%s", diff)
	}
}

func TestDeviceCodeFailures(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(idp *entratest.Issuer, dc *entra.DeviceCode)
		denyAt    int // Deny during this sleep (0 = never)
		want      error
		wantPolls int
	}{
		{name: "denied after pending", denyAt: 2, want: entra.ErrDeviceCodeDenied, wantPolls: 2},
		{
			name:    "expired by the tenant",
			prepare: func(idp *entratest.Issuer, dc *entra.DeviceCode) { idp.Expire(dc.UserCode) },
			want:    entra.ErrDeviceCodeExpired, wantPolls: 1,
		},
		{
			// 12 s lifetime, 5 s interval: polls at 5, 10 and 15 s (the
			// last sleep overshoots), then the client stops on its own.
			name:    "expired on the client clock",
			prepare: func(idp *entratest.Issuer, dc *entra.DeviceCode) { dc.ExpiresAt = dc.Now().Add(12 * time.Second) },
			want:    entra.ErrDeviceCodeExpired, wantPolls: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idp := entratest.NewIssuer(t, tenant)
			clk := entratest.NewClock()
			var dc *entra.DeviceCode
			dc, _ = startDevice(t, idp, clk, func(n int) {
				if n == tt.denyAt {
					idp.Deny(dc.UserCode)
				}
			})
			if tt.prepare != nil {
				tt.prepare(idp, dc)
			}
			tok, err := dc.Poll(context.Background(), idp.Client())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Poll = %q, %v; want %v", tok, err, tt.want)
			}
			if got := idp.Polls(dc.UserCode); got != tt.wantPolls {
				t.Errorf("polls = %d, want %d", got, tt.wantPolls)
			}
		})
	}
}

func TestDeviceCodeCancelled(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	clk := entratest.NewClock()
	ctx, cancel := context.WithCancel(context.Background())
	dc, _ := startDevice(t, idp, clk, func(n int) {
		if n == 2 {
			cancel()
		}
	})
	if _, err := dc.Poll(ctx, idp.Client()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll = %v, want context.Canceled", err)
	}
	if got := idp.Polls(dc.UserCode); got != 1 {
		t.Errorf("polls = %d, want 1 (none after cancel)", got)
	}
}

func TestStartDeviceCodeErrors(t *testing.T) {
	idp := entratest.NewIssuer(t, tenant)
	otherTenantCfg := config(idp)
	otherTenantCfg.TenantID = otherTenant
	tests := []struct {
		name  string
		cfg   entra.Config
		scope string
		want  string
	}{
		{"invalid config", entra.Config{}, scope, "TenantID: required"},
		{"no scope", config(idp), " ", "scope is required"},
		{"unknown tenant", otherTenantCfg, scope, "invalid_tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := entra.StartDeviceCode(context.Background(), idp.Client(), tt.cfg, tt.scope)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("StartDeviceCode = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
