package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
)

func newAuditor(t *testing.T) (*auth.Auditor, string) {
	t.Helper()
	clock := newClock()
	db, dir := openStore(t, clock)
	return &auth.Auditor{Store: db, Now: clock.Now}, dir
}

func TestAuditRecordRedactsSecretKeys(t *testing.T) {
	ctx := t.Context()
	a, dir := newAuditor(t)
	details := map[string]string{
		"method":        "passcode",
		"Passcode":      canary,
		"newPASSWORD":   canary,
		"sessionToken":  canary,
		"client_secret": canary,
		"generation":    "4",
	}
	e := &deploy.AuditEvent{Action: "auth.attempt", Outcome: auth.OutcomeFailure, Source: "192.0.2.1", Details: details}
	if err := a.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"method":     "passcode",
		"generation": "4",
		"redacted":   "Passcode,client_secret,newPASSWORD,sessionToken",
	}
	events, err := a.Store.AuditEvents(ctx, 0, 0)
	if err != nil || len(events) != 1 {
		t.Fatalf("AuditEvents = %v, %v", events, err)
	}
	if diff := cmp.Diff(want, events[0].Details); diff != "" {
		t.Errorf("stored details (-want +got):\n%s", diff)
	}
	if _, ok := details["redacted"]; ok || details["Passcode"] != canary {
		t.Error("Record modified the caller's details map")
	}
	if !events[0].Time.Equal(newClock().Now()) {
		t.Errorf("Time = %s, want the injected clock", events[0].Time)
	}
	grepTree(t, dir, canary)
}

func TestAuditRecordRejects(t *testing.T) {
	a, _ := newAuditor(t)
	for name, e := range map[string]*deploy.AuditEvent{
		"nil":        nil,
		"no action":  {Outcome: auth.OutcomeSuccess},
		"no outcome": {Action: "passcode.set"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := a.Record(t.Context(), e); deploy.ErrorKind(err) != deploy.KindInvalid {
				t.Errorf("err = %v, want invalid", err)
			}
		})
	}
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	ctx := t.Context()
	a, _ := newAuditor(t)
	for i, action := range []string{"passcode.set", "auth.attempt", "auth.attempt", "passcode.rotate", "session.revoke"} {
		e := &deploy.AuditEvent{Action: action, Outcome: auth.OutcomeSuccess, Time: newClock().Now().Add(time.Duration(i) * time.Second),
			Details: map[string]string{"n": strings.Repeat("x", i)}}
		if err := a.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := a.VerifyAll(ctx); err != nil || n != 5 {
		t.Fatalf("VerifyAll on an intact log = %d, %v", n, err)
	}
	load := func() []*deploy.AuditEvent {
		events, err := a.Store.AuditEvents(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return events
	}
	if err := auth.Verify(load()); err != nil {
		t.Fatalf("Verify on an intact log: %v", err)
	}
	tests := []struct {
		name   string
		tamper func([]*deploy.AuditEvent) []*deploy.AuditEvent
		want   string
	}{
		{"edited outcome", func(ev []*deploy.AuditEvent) []*deploy.AuditEvent { ev[2].Outcome = auth.OutcomeFailure; return ev }, "seq 3: hash does not match"},
		{"edited detail", func(ev []*deploy.AuditEvent) []*deploy.AuditEvent { ev[1].Details["n"] = "y"; return ev }, "seq 2: hash does not match"},
		{"edited time", func(ev []*deploy.AuditEvent) []*deploy.AuditEvent {
			ev[4].Time = ev[4].Time.Add(time.Second)
			return ev
		}, "seq 5: hash does not match"},
		{"deleted entry", func(ev []*deploy.AuditEvent) []*deploy.AuditEvent { return append(ev[:2], ev[3:]...) }, "seq 4 follows seq 2"},
		{"rehashed edit", func(ev []*deploy.AuditEvent) []*deploy.AuditEvent {
			ev[1].Actor = "mallory"
			ev[1].Hash = deploy.AuditHash(ev[1].PrevHash, ev[1])
			return ev
		}, "seq 3: previous hash does not match seq 2"},
		{"forged genesis", func(ev []*deploy.AuditEvent) []*deploy.AuditEvent { ev[0].PrevHash = "00"; return ev }, "seq 1: first entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.Verify(tt.tamper(load()))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
