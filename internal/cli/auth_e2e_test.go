package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/server/servertest"
)

func startAuthServer(t *testing.T) (string, *client.Machine) {
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
	return srv.DataDir(), m
}

func TestPasscodeEndToEnd(t *testing.T) {
	dir, m := startAuthServer(t)
	const canary = "Canary-Lab-7731-xq"
	var all strings.Builder // every byte imprint printed
	run := func(stdin string, args ...string) result {
		t.Helper()
		r := imprint(t, dir, strings.NewReader(stdin), args...)
		all.WriteString(r.stdout + r.stderr)
		return r
	}

	tests := []struct {
		name    string
		stdin   string
		code    int
		wantErr string
	}{
		{"mismatch", canary + "\nsomething-else-42\n", 1, "imprint: passcode set: passcodes do not match"},
		{"weak", "password\npassword\n", 1, "imprint: passcode set: "},
		{"one line only", canary + "\n", 1, "verify passcode: end of input"},
		{"match", canary + "\n" + canary + "\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(tt.stdin, "passcode", "set")
			if r.code != tt.code {
				t.Fatalf("exit = %d, want %d; stderr: %s", r.code, tt.code, r.stderr)
			}
			if tt.wantErr != "" {
				wantContains(t, "stderr", r.stderr, tt.wantErr)
			}
		})
	}
	if r := run("password\npassword\n", "passcode", "set"); !strings.Contains(r.stderr, "too common") {
		t.Errorf("weak passcode error %q does not give the server's policy reason", r.stderr)
	}

	st := run("", "passcode", "status")
	if st.code != 0 {
		t.Fatalf("status: exit %d: %s", st.code, st.stderr)
	}
	wantContains(t, "status", st.stdout, "Passcode:", "set (chosen by an admin)", "Generation:")

	// A session minted by the passcode, seen and revoked by the CLI.
	tok, err := m.Token(context.Background(), client.TokenRequest{Method: "passcode", Passcode: canary,
		Device: client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-000000000001"}})
	if err != nil {
		t.Fatal(err)
	}
	list := run("", "sessions", "list")
	wantContains(t, "sessions list", list.stdout, tok.SessionID, "passcode")
	if r := run("", "sessions", "revoke", tok.SessionID); r.code != 0 {
		t.Fatalf("revoke: exit %d: %s", r.code, r.stderr)
	}
	if r := run("", "sessions", "list"); strings.Contains(r.stdout, tok.SessionID) {
		t.Errorf("revoked session still listed:\n%s", r.stdout)
	}
	if r := run("", "sessions", "list", "--all"); !strings.Contains(r.stdout, tok.SessionID) {
		t.Errorf("sessions list --all lacks the revoked session:\n%s", r.stdout)
	}
	if r := run("", "sessions", "revoke", tok.SessionID); r.code != 1 {
		t.Errorf("revoking twice: exit %d, want 1", r.code)
	}
	// A lost laptop: every session of the device at once.
	for range 2 {
		if _, err := m.Token(context.Background(), client.TokenRequest{Method: "passcode", Passcode: canary,
			Device: client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-00000000000a"}}); err != nil {
			t.Fatal(err)
		}
	}
	if r := run("", "sessions", "revoke", "--device", "4C4C4544-0000-1000-8000-00000000000A"); r.code != 0 || !strings.Contains(r.stdout, "revoked 2 session(s)") {
		t.Errorf("revoke --device: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := run("", "sessions", "revoke", "--all", tok.SessionID); r.code != 2 {
		t.Errorf("revoke with both an ID and --all: exit %d, want 2", r.code)
	}

	// rotate --grace 0 revokes what the old passcode opened.
	tok, err = m.Token(context.Background(), client.TokenRequest{Method: "passcode", Passcode: canary,
		Device: client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-000000000002"}})
	if err != nil {
		t.Fatal(err)
	}
	rot := run("", "passcode", "rotate", "--grace", "0", "--generate")
	if rot.code != 0 {
		t.Fatalf("rotate: exit %d: %s", rot.code, rot.stderr)
	}
	wantContains(t, "rotate", rot.stdout, "New passcode: ", "shown only now", "Sessions revoked: 1")
	if r := run("", "sessions", "list"); strings.Contains(r.stdout, tok.SessionID) {
		t.Errorf("session of the rotated-out passcode still live:\n%s", r.stdout)
	}
	if r := run("", "passcode", "rotate", "--generate"); r.code != 2 {
		t.Errorf("rotate without --grace: exit %d, want 2", r.code)
	}
	if r := run("", "passcode", "rotate", "--grace", "soon"); r.code != 2 {
		t.Errorf("rotate --grace soon: exit %d, want 2", r.code)
	}
	grace := run("", "passcode", "rotate", "--grace", "2h", "--generate")
	wantContains(t, "rotate with grace", grace.stdout, "keeps working until")
	wantContains(t, "status with grace", run("", "passcode", "status").stdout, "Previous: generation")

	gen := run("", "passcode", "generate")
	if gen.code != 0 {
		t.Fatalf("generate: exit %d: %s", gen.code, gen.stderr)
	}
	wantContains(t, "generate", gen.stdout, "New passcode: ", "shown only now")

	if r := run("", "passcode", "clear"); r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Errorf("clear without --yes on a pipe: exit %d, stderr %q; want 2 asking for --yes", r.code, r.stderr)
	}
	if r := run("", "passcode", "clear", "--yes"); r.code != 0 {
		t.Fatalf("clear: exit %d: %s", r.code, r.stderr)
	}
	wantContains(t, "status after clear", run("", "passcode", "status").stdout, "not set")

	// The audit log saw all of it, and its chain holds.
	audit := run("", "audit")
	wantContains(t, "audit", audit.stdout, "SEQ", "passcode.set", "passcode.rotate", "session.revoke", "passcode.clear")
	if r := run("", "audit", "--after", "1", "--limit", "1"); strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("audit --after 1 --limit 1 printed:\n%s", r.stdout)
	}
	v := run("", "audit", "verify")
	if v.code != 0 {
		t.Fatalf("audit verify: exit %d: %s", v.code, v.stderr)
	}
	wantContains(t, "audit verify", v.stdout, "audit log intact")

	if strings.Contains(all.String(), canary) {
		t.Errorf("the chosen passcode appears in the output of imprint")
	}
}

func TestSecurityEndToEnd(t *testing.T) {
	dir, _ := startAuthServer(t)
	show := ok(t, dir, "security", "show")
	wantContains(t, "security show", show, "Installed OS:", "none: clients are refused", "anonymous", "off", "Missing:")

	r := imprint(t, dir, nil, "security", "set", "anonymous", "on")
	if r.code != 0 {
		t.Fatalf("set anonymous on: exit %d: %s", r.code, r.stderr)
	}
	wantContains(t, "set anonymous on", r.stdout, "anonymous")
	wantContains(t, "warning", r.stderr, "WARNING")
	var sec client.Security
	okJSON(t, dir, &sec, "security", "show")
	if !sec.Anonymous || len(sec.Methods) == 0 || sec.Methods[0] != "anonymous" {
		t.Errorf("after anonymous on: %+v", sec)
	}
	if r := imprint(t, dir, nil, "security", "set", "anonymous", "maybe"); r.code != 2 {
		t.Errorf("anonymous maybe: exit %d, want 2", r.code)
	}
	// Limited to a lab network.
	out := ok(t, dir, "security", "set", "anonymous", "on", "--from", "10.20.0.0/16", "--from", "10.30.0.0/16")
	wantContains(t, "anonymous from", out, "on (from 10.20.0.0/16, 10.30.0.0/16 only)")
	if r := imprint(t, dir, nil, "security", "set", "anonymous", "on", "--from", "lab"); r.code != 1 || !strings.Contains(r.stderr, `"lab" is not a network`) {
		t.Errorf("--from lab: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := imprint(t, dir, nil, "security", "set", "anonymous", "off", "--from", "10.20.0.0/16"); r.code != 2 {
		t.Errorf("off --from: exit %d, want 2", r.code)
	}

	const tenant, app = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
	out = ok(t, dir, "security", "set", "entra", "--tenant", tenant, "--client", app, "--role", "Imprint.Deploy")
	wantContains(t, "set entra", out, "on (tenant "+tenant, "role Imprint.Deploy")
	if r := imprint(t, dir, nil, "security", "set", "entra", "--tenant", "contoso.com", "--client", app); r.code != 1 || !strings.Contains(r.stderr, "TenantID") {
		t.Errorf("domain tenant: exit %d, stderr %q; want 1 naming TenantID", r.code, r.stderr)
	}
	if r := imprint(t, dir, nil, "security", "set", "entra", "--client", app); r.code != 2 {
		t.Errorf("entra without --tenant: exit %d, want 2", r.code)
	}
	// The passcode beside Entra ID: off by default, on when asked.
	ok(t, dir, "passcode", "generate")
	okJSON(t, dir, &sec, "security", "show")
	if sec.PasscodeAlongside || slices.Contains(sec.Methods, "passcode") {
		t.Errorf("passcode offered beside Entra ID by default: %+v", sec)
	}
	out = ok(t, dir, "security", "set", "passcode-alongside", "on")
	wantContains(t, "set passcode-alongside on", out, "also alongside Entra ID or certificates", "entra → passcode")
	if r := imprint(t, dir, nil, "security", "set", "passcode-alongside", "sometimes"); r.code != 2 {
		t.Errorf("passcode-alongside sometimes: exit %d, want 2", r.code)
	}
	ok(t, dir, "security", "clear", "entra")
	ok(t, dir, "security", "set", "anonymous", "off")
	sec = client.Security{}
	okJSON(t, dir, &sec, "security", "show")
	if sec.Anonymous || sec.Entra != nil {
		t.Errorf("after clear and off: %+v", sec)
	}
}

func TestRunsEndToEnd(t *testing.T) {
	dir, m := startAuthServer(t)
	ctx := context.Background()
	ok(t, dir, "security", "set", "anonymous", "on")
	tok, err := m.Token(ctx, client.TokenRequest{Method: "anonymous", Device: client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-000000000003"}})
	if err != nil {
		t.Fatal(err)
	}
	m.SetToken(tok.Token)
	var ts struct {
		TaskSequence struct {
			ID       string `json:"id"`
			Versions []struct {
				VersionNo int `json:"versionNo"`
			} `json:"versions"`
		} `json:"taskSequence"`
	}
	// Machines run only Active versions: import one.
	const tsID = "61111111-2222-3333-4444-555555555555"
	doc := filepath.Join(t.TempDir(), "lab.json")
	if err := os.WriteFile(doc, []byte(`{"id":"`+tsID+`","name":"Lab","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"`+tsID+`","versionNo":1,"status":"Active","steps":[]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	okJSON(t, dir, &ts, "ts", "import", doc)
	run, err := m.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: ts.TaskSequence.ID, VersionNo: ts.TaskSequence.Versions[0].VersionNo})
	if err != nil {
		t.Fatal(err)
	}
	code := 3
	// A download's sources must be counts: a negative one is refused
	// before anything of the batch is stored.
	bad := m.SendEvents(ctx, run.ID, []client.AgentEvent{{Type: "step-end", Path: "Disk/Apply", Name: "Apply", Outcome: "succeeded",
		Downloads: []deploy.Download{{Content: "c:1", Bytes: 1, Server: -1}}}})
	if deploy.ErrorKind(bad) != deploy.KindInvalid || !strings.Contains(bad.Error(), "events[0].downloads") {
		t.Errorf("step-end with a negative byte count: %v, want invalid naming events[0].downloads", bad)
	}
	zero := 0
	err = m.SendEvents(ctx, run.ID, []client.AgentEvent{
		{Type: "step-start", Path: "Disk/Apply", Name: "Apply"},
		{Type: "step-end", Path: "Disk/Apply", Name: "Apply", Outcome: "succeeded", ExitCode: &zero, DurationSeconds: 9,
			Downloads: []deploy.Download{{Content: "c:1", Name: "Lab image", Bytes: 1000, Server: 100, Peers: 850, Multicast: 50, Refused: 2}}},
		{Type: "step-start", Path: "Disk/Format", Name: "Format"},
		{Type: "step-end", Path: "Disk/Format", Name: "Format", Outcome: "failed", ExitCode: &code, Message: "no disk fits", DurationSeconds: 1.5},
		{Type: "run-end", State: "failed", Message: "Format failed"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.UploadLogs(ctx, run.ID, strings.NewReader("log bundle bytes")); err != nil {
		t.Fatal(err)
	}

	wantContains(t, "runs list", ok(t, dir, "runs", "list", "--state", "failed"), run.ID, "failed")
	if out := ok(t, dir, "runs", "list", "--state", "succeeded"); strings.Contains(out, run.ID) {
		t.Errorf("runs list --state succeeded lists the failed run:\n%s", out)
	}
	if r := imprint(t, dir, nil, "runs", "list", "--state", "done"); r.code != 2 {
		t.Errorf("--state done: exit %d, want 2", r.code)
	}
	show := ok(t, dir, "runs", "show", run.ID)
	wantContains(t, "runs show", show, "State:", "failed", "Disk/Format", "3", "1.5s", "no disk fits", "Format failed")
	// Where the Apply step's bytes came from, as a table and in the record.
	wantContains(t, "runs show", show, "Downloads:", "STEP", "SERVER", "RELAY", "PEERS", "MULTICAST", "Lab image (c:1)")
	if !regexp.MustCompile(`Disk/Apply\s+Lab image \(c:1\)\s+1000\s+100\s+0\s+850\s+50\s+2`).MatchString(show) {
		t.Errorf("runs show has no download row for Disk/Apply:\n%s", show)
	}
	var shown deploy.Run
	okJSON(t, dir, &shown, "runs", "show", run.ID)
	if len(shown.Steps) == 0 || len(shown.Steps[0].Downloads) != 1 ||
		shown.Steps[0].Downloads[0] != (deploy.Download{Content: "c:1", Name: "Lab image", Bytes: 1000, Server: 100, Peers: 850, Multicast: 50, Refused: 2}) {
		t.Errorf("run record's steps = %+v, want Disk/Apply with its download", shown.Steps)
	}

	ev := ok(t, dir, "runs", "events", run.ID, "--follow") // terminal: prints and ends
	wantContains(t, "runs events", ev, "step-start", "step-end  Disk/Format  failed  exit 3", "run-end")

	names := strings.Fields(ok(t, dir, "runs", "logs", run.ID))
	if len(names) != 1 {
		t.Fatalf("runs logs = %q, want one bundle", names)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	ok(t, dir, "runs", "logs", run.ID, "--name", names[0], "-o", out)
	if b, err := os.ReadFile(out); err != nil || string(b) != "log bundle bytes" {
		t.Errorf("downloaded bundle = %q, %v", b, err)
	}
	if r := imprint(t, dir, nil, "runs", "show", "no-such-run"); r.code != 1 {
		t.Errorf("unknown run: exit %d, want 1", r.code)
	}

	// Cancel: an ended run cannot be; a running one is, and its agent
	// is refused from then on.
	if r := imprint(t, dir, nil, "runs", "cancel", run.ID); r.code != 1 || !strings.Contains(r.stderr, "already ended") {
		t.Errorf("cancel an ended run: exit %d %q, want 1 already ended", r.code, r.stderr)
	}
	tok, err = m.Token(ctx, client.TokenRequest{Method: "anonymous", Device: client.DeviceInfo{UUID: "4c4c4544-0000-1000-8000-000000000004"}})
	if err != nil {
		t.Fatal(err)
	}
	m.SetToken(tok.Token)
	run2, err := m.CreateRun(ctx, client.CreateRunRequest{TaskSequenceID: ts.TaskSequence.ID, VersionNo: ts.TaskSequence.Versions[0].VersionNo})
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, "runs cancel", ok(t, dir, "runs", "cancel", run2.ID), run2.ID, "canceled")
	wantContains(t, "runs show", ok(t, dir, "runs", "show", run2.ID), "canceled", "canceled by admin-socket")
	if err := m.SendEvents(ctx, run2.ID, []client.AgentEvent{{Type: "run-end", State: "succeeded"}}); err == nil {
		t.Error("the canceled run's agent still reports")
	}
}

// TestSecureBootSetting: Secure Boot mode is on by default, `security
// show` says when the signed chain's files are missing from the boot
// image, and `security set secure-boot` turns it off and on.
func TestSecureBootSetting(t *testing.T) {
	dir, _ := startAuthServer(t)
	var sec client.Security
	okJSON(t, dir, &sec, "security", "show")
	if !sec.SecureBoot || sec.SecureBootReady {
		t.Errorf("new data directory: secureBoot %v ready %v, want on and not ready", sec.SecureBoot, sec.SecureBootReady)
	}
	show := ok(t, dir, "security", "show")
	wantContains(t, "security show", show, "secure boot", "Secure Boot mode is on but the boot image has no shimx64.efi")

	images := filepath.Join(server.BootImagesDir(dir), "x86_64")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"shimx64.efi", "grubx64.efi", "vmlinuz", "initrd.img"} {
		if err := os.WriteFile(filepath.Join(images, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	show = ok(t, dir, "security", "show")
	wantContains(t, "security show, files there", show, "on (network boot: shim, signed GRUB, signed kernel)")
	if strings.Contains(show, "Secure Boot mode is on but") {
		t.Errorf("still reported missing:\n%s", show)
	}

	out := ok(t, dir, "security", "set", "secure-boot", "off")
	okJSON(t, dir, &sec, "security", "show")
	if sec.SecureBoot {
		t.Errorf("after set off: secureBoot on:\n%s", out)
	}
	ok(t, dir, "security", "set", "secure-boot", "on")
	okJSON(t, dir, &sec, "security", "show")
	if !sec.SecureBoot || !sec.SecureBootReady {
		t.Errorf("after set on: secureBoot %v ready %v", sec.SecureBoot, sec.SecureBootReady)
	}
	if r := imprint(t, dir, nil, "security", "set", "secure-boot", "sometimes"); r.code != 2 {
		t.Errorf("secure-boot sometimes: exit %d, want 2", r.code)
	}
	if r := imprint(t, dir, nil, "security", "set", "secure-boot", "on", "--from", "10.0.0.0/8"); r.code != 2 {
		t.Errorf("secure-boot --from: exit %d, want 2", r.code)
	}
}
