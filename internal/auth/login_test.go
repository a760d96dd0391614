package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// auditLog keeps what a Login recorded.
type auditLog struct {
	mu     sync.Mutex
	events []*deploy.AuditEvent
}

func (a *auditLog) record(_ context.Context, e *deploy.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *auditLog) last(t *testing.T) *deploy.AuditEvent {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.events) == 0 {
		t.Fatal("nothing audited")
	}
	return a.events[len(a.events)-1]
}

func newLogin(t *testing.T) (*auth.Login, *auditLog, deploy.Store) {
	t.Helper()
	clock := newClock()
	db, _ := openStore(t, clock)
	p := newPasscodes(t, db, clock)
	set(p)
	audit := &auditLog{}
	return &auth.Login{Store: db, Passcodes: p, Throttle: newThrottle(t, clock, nil),
		Sessions: &auth.Sessions{Store: db, Now: clock.Now}, Record: audit.record, Now: clock.Now}, audit, db
}

// TestLoginDecides: one call owns the decision — settings, methods
// policy, equal-cost refusal, device record, session and audit.
func TestLoginDecides(t *testing.T) {
	dev := deploy.Device{UUID: "4C4C4544-0031-3410-8052-B4C04F4A3732", Model: "OptiPlex"}
	tests := []struct {
		name       string
		att        auth.LoginAttempt
		anonymous  bool
		wantErr    bool
		wantReason string
	}{
		{name: "passcode", att: auth.LoginAttempt{Method: auth.MethodPasscode, Passcode: canary, Device: dev}},
		{name: "wrong passcode", att: auth.LoginAttempt{Method: auth.MethodPasscode, Passcode: "nope", Device: dev}, wantErr: true},
		{name: "malformed request", att: auth.LoginAttempt{Method: auth.MethodPasscode, Passcode: canary, Malformed: true},
			wantErr: true, wantReason: "malformed request"},
		{name: "malformed device", att: auth.LoginAttempt{Method: auth.MethodPasscode, Passcode: canary,
			Device: deploy.Device{MACs: []string{"not a mac"}}}, wantErr: true, wantReason: "malformed request"},
		{name: "unknown method", att: auth.LoginAttempt{Method: "magic"}, wantErr: true, wantReason: "unknown method"},
		{name: "anonymous off", att: auth.LoginAttempt{Method: auth.MethodAnonymous}, wantErr: true},
		{name: "anonymous on", att: auth.LoginAttempt{Method: auth.MethodAnonymous}, anonymous: true},
		{name: "certificate without one", att: auth.LoginAttempt{Method: auth.MethodCertificate}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, audit, db := newLogin(t)
			ctx := t.Context()
			if tt.anonymous {
				if err := db.PutSetting(ctx, auth.SecuritySettingKey, []byte(`{"anonymous":true}`)); err != nil {
					t.Fatal(err)
				}
			}
			tt.att.Source = "192.0.2.7"
			res, err := l.Login(ctx, tt.att)
			ev := audit.last(t)
			if ev.Action != "auth.attempt" || ev.Source != "192.0.2.7" || ev.Details["method"] != tt.att.Method {
				t.Errorf("audit event %+v does not describe the attempt", ev)
			}
			if tt.wantErr {
				if deploy.ErrorKind(err) != deploy.KindUnauthorized || res != nil {
					t.Fatalf("Login = %v, %v; want an unauthorized refusal", res, err)
				}
				if ev.Outcome != auth.OutcomeFailure || ev.Details["reason"] != tt.wantReason {
					t.Errorf("audit outcome %q reason %q, want failure %q", ev.Outcome, ev.Details["reason"], tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			sess, err := l.Sessions.Authenticate(ctx, res.Token)
			if err != nil || sess.ID != res.Session.ID || sess.Method != tt.att.Method {
				t.Fatalf("minted token authenticates as %+v, %v", sess, err)
			}
			if ev.Outcome != auth.OutcomeSuccess || ev.Details["session"] != res.Session.ID {
				t.Errorf("audit %+v, want success naming the session", ev)
			}
			if tt.att.Device.UUID != "" {
				d := tt.att.Device
				if err := d.Normalize(); err != nil {
					t.Fatal(err)
				}
				key := auth.DeviceKey(&d)
				if _, err := db.Device(ctx, key); err != nil {
					t.Errorf("device %s not recorded: %v", key, err)
				}
			}
		})
	}
}

// TestLoginThrottles: after the free failures a source is refused
// before its credentials are evaluated, even the right passcode.
func TestLoginThrottles(t *testing.T) {
	l, _, _ := newLogin(t)
	ctx := t.Context()
	att := auth.LoginAttempt{Method: auth.MethodPasscode, Passcode: "wrong", Source: "192.0.2.9"}
	var refused *auth.RefusedError
	for i := 0; i < 50 && refused == nil; i++ {
		_, err := l.Login(ctx, att)
		errors.As(err, &refused)
	}
	if refused == nil || refused.Wait <= 0 {
		t.Fatalf("50 wrong passcodes from one source were never refused by the throttle")
	}
	att.Passcode = canary
	if _, err := l.Login(ctx, att); !errors.As(err, &refused) {
		t.Fatalf("right passcode during the backoff = %v, want a refusal", err)
	}
	if ok, _ := l.Allow(att.Source); ok {
		t.Error("Allow lets a source in its backoff through")
	}
}
