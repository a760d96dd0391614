package client_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/server/servertest"
)

// startAuthServer runs the real server with a cheap Argon2 cost and
// returns an admin client and a machine client of its HTTPS API.
func startAuthServer(t *testing.T) (*client.Admin, *client.Machine) {
	t.Helper()
	srv := servertest.Start(t, nil)
	ca, err := os.ReadFile(server.CACertPath(srv.DataDir()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := client.NewMachine("https://"+srv.APIAddr().String(), ca)
	if err != nil {
		t.Fatal(err)
	}
	return client.NewAdmin(srv.Socket()), m
}

func TestPasscodeSessionsAuditRuns(t *testing.T) {
	c, m := startAuthServer(t)
	ctx := context.Background()
	const canary = "Canary-Lab-7731-xq"

	if _, err := c.SetPasscode(ctx, "password"); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("weak passcode: %v, want invalid", err)
	}
	ch, err := c.SetPasscode(ctx, canary)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.PasscodeStatus(ctx)
	if err != nil || !st.Set || st.Generation != ch.Generation {
		t.Fatalf("status = %+v, %v; want set at generation %d", st, err, ch.Generation)
	}

	tok, err := m.Token(ctx, client.TokenRequest{Method: "passcode", Passcode: canary, Device: client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-000000000001"}})
	if err != nil {
		t.Fatal(err)
	}
	m.SetToken(tok.Token)
	sessions, err := c.Sessions(ctx, false)
	if err != nil || len(sessions) != 1 || sessions[0].ID != tok.SessionID {
		t.Fatalf("sessions = %v, %v; want the one of %s", sessions, err, tok.SessionID)
	}

	// Machines run only Active versions.
	const tsID = "51111111-2222-3333-4444-555555555555"
	ts, _, err := c.ImportTaskSequence(ctx, strings.NewReader(`{"id":"`+tsID+`","name":"Lab","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"`+tsID+`","versionNo":1,"status":"Active","steps":[]}]}`), client.ImportNew)
	if err != nil {
		t.Fatal(err)
	}
	run, err := m.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: ts.ID, VersionNo: ts.Versions[0].VersionNo})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SendEvents(ctx, run.ID, []client.AgentEvent{{Type: "step-start", Path: "Format", Name: "Format"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.UploadLogs(ctx, run.ID, strings.NewReader("tgz bytes")); err != nil {
		t.Fatal(err)
	}
	runs, err := c.Runs(ctx, client.RunFilter{TaskSequenceID: ts.ID})
	if err != nil || len(runs) != 1 || runs[0].ID != run.ID {
		t.Fatalf("runs = %v, %v", runs, err)
	}
	if runs, err := c.Runs(ctx, client.RunFilter{State: deploy.RunSucceeded}); err != nil || len(runs) != 0 {
		t.Errorf("succeeded runs = %v, %v; want none", runs, err)
	}
	got, err := c.Run(ctx, run.ID)
	if err != nil || len(got.Steps) != 1 || got.Steps[0].Path != "Format" {
		t.Fatalf("run = %+v, %v", got, err)
	}
	evs, err := c.RunEvents(ctx, run.ID, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events = %v, %v", evs, err)
	}
	if more, err := c.RunEvents(ctx, run.ID, evs[0].Seq); err != nil || len(more) != 0 {
		t.Errorf("events after %d = %v, %v; want none", evs[0].Seq, more, err)
	}
	names, err := c.RunLogs(ctx, run.ID)
	if err != nil || len(names) != 1 {
		t.Fatalf("log bundles = %v, %v", names, err)
	}
	var buf bytes.Buffer
	if _, err := c.DownloadRunLog(ctx, run.ID, names[0], &buf); err != nil || buf.String() != "tgz bytes" {
		t.Errorf("log bundle = %q, %v", buf.String(), err)
	}
	if _, err := c.DownloadRunLog(ctx, run.ID, "nope.tar.gz", io.Discard); deploy.ErrorKind(err) != deploy.KindNotFound {
		t.Errorf("unknown bundle: %v, want not found", err)
	}

	rot, err := c.RotatePasscode(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Code == "" || rot.SessionsRevoked != 1 {
		t.Errorf("rotate --grace 0 = %+v, want a generated code and 1 session revoked", rot)
	}
	if live, err := c.Sessions(ctx, false); err != nil || len(live) != 0 {
		t.Errorf("live sessions after rotate = %v, %v; want none", live, err)
	}
	if all, err := c.Sessions(ctx, true); err != nil || len(all) != 1 || all[0].RevokedAt == nil {
		t.Errorf("all sessions = %v, %v; want one revoked", all, err)
	}
	if err := c.RevokeSession(ctx, tok.SessionID); deploy.ErrorKind(err) != deploy.KindNotFound {
		t.Errorf("revoke a revoked session: %v, want not found", err)
	}

	rot2, err := c.RotatePasscode(ctx, "", time.Hour)
	if err != nil || rot2.GraceUntil.IsZero() {
		t.Errorf("rotate with grace = %+v, %v; want a grace end", rot2, err)
	}
	if _, err := c.ClearPasscode(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.PasscodeStatus(ctx); err != nil || st.Set {
		t.Errorf("status after clear = %+v, %v", st, err)
	}

	events, err := c.AuditEvents(ctx, 0, 0)
	if err != nil || len(events) == 0 {
		t.Fatalf("audit = %v, %v", events, err)
	}
	if page, err := c.AuditEvents(ctx, events[0].Seq, 1); err != nil || len(page) != 1 || page[0].Seq <= events[0].Seq {
		t.Errorf("audit after %d limit 1 = %v, %v", events[0].Seq, page, err)
	}
	for _, e := range events {
		for k, v := range e.Details {
			if strings.Contains(v, canary) {
				t.Errorf("audit %d detail %s holds the passcode", e.Seq, k)
			}
		}
	}
	if n, err := c.VerifyAudit(ctx); err != nil || n != len(events) {
		t.Errorf("verify = %d, %v; want %d", n, err, len(events))
	}
}

func TestSecuritySettings(t *testing.T) {
	c, _ := startAuthServer(t)
	ctx := context.Background()
	sec, err := c.Security(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sec.Anonymous || len(sec.Methods) != 0 || len(sec.Missing) == 0 {
		t.Errorf("fresh security = %+v, want nothing on and something missing", sec)
	}
	sec, err = c.SetAnonymous(ctx, true)
	if err != nil || !sec.Anonymous || len(sec.Methods) == 0 || sec.Methods[0] != "anonymous" {
		t.Errorf("anonymous on = %+v, %v", sec, err)
	}
	const tenant, app = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
	sec, err = c.SetEntra(ctx, client.EntraConfig{TenantID: tenant, ClientID: app, RequiredRole: "Imprint.Deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Entra == nil || sec.Entra.TenantID != tenant || sec.Entra.RequiredRole != "Imprint.Deploy" {
		t.Errorf("entra = %+v", sec.Entra)
	}
	_, err = c.SetEntra(ctx, client.EntraConfig{TenantID: "contoso.com", ClientID: app})
	if deploy.ErrorKind(err) != deploy.KindInvalid || !strings.Contains(err.Error(), "TenantID") {
		t.Errorf("entra with a domain tenant: %v, want invalid naming TenantID", err)
	}
	if sec, err = c.ClearEntra(ctx); err != nil || sec.Entra != nil {
		t.Errorf("clear entra = %+v, %v", sec, err)
	}
}
