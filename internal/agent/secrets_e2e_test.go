package agent_test

// What the agent leaves on the machine (security checklist PC-10, TK-7):
// full runs against the real server with a canary passcode and a Password
// option, then every file the agent wrote is searched for the secrets.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/secrettest"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

const (
	canaryPasscode = "Canary-Passcode-7731"
	canaryAPIKey   = "Canary-ApiKey-5150"
	secretsTSID    = "7a111111-2222-3333-4444-555555555555"
	apiKeyDefID    = "7b111111-2222-3333-4444-555555555555"
)

// secretsServer starts the real server with the canary passcode, a custom
// step definition "Use API key" whose ApiKey option is of type Password
// (its script, apikey.sh, prints the key and writes it to the file named
// by its Out option), and a task sequence of steps.
func secretsServer(t *testing.T, steps ...map[string]any) *realServer {
	t.Helper()
	return secretsServerConfig(t, nil, steps...)
}

// secretsServerConfig is secretsServer with the server's configuration
// edited first.
func secretsServerConfig(t *testing.T, edit func(*server.Config), steps ...map[string]any) *realServer {
	t.Helper()
	ctx := context.Background()
	rs := startRealServer(t, edit)
	if _, err := rs.admin.SetPasscode(ctx, canaryPasscode); err != nil {
		t.Fatalf("set passcode: %v", err)
	}
	opt := func(name, typ string) deploy.Option {
		return deploy.Option{Name: name, DisplayName: name, Type: typ, Validations: []deploy.Validation{}, DropdownOptions: []deploy.DropdownOption{}}
	}
	def := deploy.StepDefinition{ID: apiKeyDefID, Name: "Use API key", TypeName: deploy.StrPtr("UseApiKey"),
		Versions: []deploy.StepDefVersion{{ID: "7c111111-2222-3333-4444-555555555555", StepDefinitionID: apiKeyDefID, VersionNo: 1,
			Status: deploy.StatusActive, Options: []deploy.Option{
				opt("ScriptName", deploy.OptionScript), opt("Content", deploy.OptionContent),
				opt("ApiKey", deploy.OptionPassword), opt("Out", deploy.OptionText),
			}}}}
	b, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.admin.ImportStepDefinition(ctx, bytes.NewReader(b), client.ImportNew); err != nil {
		t.Fatalf("import step definition: %v", err)
	}
	item, err := rs.admin.CreateContentItem(ctx, deploy.ContentItem{Name: "API key script", Type: deploy.ContentFolder, Purpose: deploy.PurposeOther})
	if err != nil {
		t.Fatal(err)
	}
	script := "echo \"using key $ApiKey\"\nprintf %s \"$ApiKey\" > \"$Out\"\n"
	var folder bytes.Buffer
	tw := tar.NewWriter(&folder)
	if err := tw.WriteHeader(&tar.Header{Name: "apikey.sh", Mode: 0o755, Size: int64(len(script)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(script)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.admin.AddContentVersion(ctx, item.ID, deploy.ContentVersion{Status: deploy.StatusActive}, &folder, "application/x-tar"); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s["typeId"] == apiKeyDefID {
			s["contentItems"] = map[string]string{"Content": item.ID + ":1"}
		}
	}
	doc, err := json.Marshal(map[string]any{"id": secretsTSID, "name": "Secrets", "architecture": "Any",
		"versions": []any{map[string]any{"id": "7d111111-v1", "taskSequenceId": secretsTSID, "versionNo": 1, "status": "Active", "steps": steps}}})
	if err != nil {
		t.Fatal(err)
	}
	// The built-in Reboot step's hidden DeployR content is not on a fresh
	// server: a warning, not an error.
	if _, _, err := rs.admin.ImportTaskSequence(ctx, bytes.NewReader(doc), client.ImportNew); err != nil {
		t.Fatalf("import task sequence: %v", err)
	}
	return rs
}

func tsStep(id, typeID string, settings map[string]string) map[string]any {
	return map[string]any{"id": id, "name": id, "isGroup": false, "typeId": typeID, "settings": settings,
		"contentItems": map[string]string{}, "enabled": true, "continueOnError": false, "condition": nil}
}

func apiKeyStep(id, out string) map[string]any {
	return tsStep(id, apiKeyDefID, map[string]string{"ScriptName": "apikey.sh", "ApiKey": canaryAPIKey, "Out": out})
}

// snapshotStep copies the agent's state directory, as it is while the run
// is in progress, to dir, and writes what a step gets for %Passcode% to
// dir/passcode-var. (cp complains about the temporary files the event
// reporter renames away meanwhile; readSnapshot checks that the state
// files were copied.)
func snapshotStep(id, dir string) map[string]any {
	return tsStep(id, stepdefs.TypeRunCommandLine, map[string]string{
		"CommandLine": "cp -R %IMPRINTSTATE% " + dir + " 2>/dev/null; echo %Passcode% > " + filepath.Join(dir, "passcode-var")})
}

// readSnapshot checks that the snapshot holds the state files and returns
// the session token from it.
func readSnapshot(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "journal.json")); err != nil {
		t.Fatalf("snapshot of the state directory: %v", err)
	}
	return tokenIn(t, dir)
}

// filesWith returns the files under root (relative, slash-separated) that
// hold secret in any of its forms.
func filesWith(t *testing.T, root, secret string) []string {
	t.Helper()
	return secrettest.FilesWith(t, root, secret)
}

func wantNone(t *testing.T, root, what, secret string) {
	t.Helper()
	if hits := filesWith(t, root, secret); len(hits) > 0 {
		t.Errorf("%s in %s: %q", what, root, hits)
	}
}

// tokenIn reads the session token from a copy of agent.json.
func tokenIn(t *testing.T, stateDir string) string {
	t.Helper()
	st, err := agent.LoadState(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Token == "" {
		t.Fatalf("no token in %s/agent.json", stateDir)
	}
	return st.Token
}

func secretsAgent(t *testing.T, rs *realServer, state string, out *syncBuffer) *agent.Agent {
	t.Helper()
	return &agent.Agent{
		Client:   rs.machine(t),
		Console:  agent.NewConsole(strings.NewReader(""), out),
		StateDir: state,
		TS:       secretsTSID,
		Vars:     map[string]string{"Passcode": canaryPasscode},
		Gatherer: agent.Gatherer{Root: t.TempDir(), Addrs: func() ([]string, error) { return nil, nil }},
		Power:    func(context.Context, string) error { return nil },
		Sleep:    func(context.Context, time.Duration) error { return nil },
	}
}

// TestFinishedRunLeavesNoSecrets runs a sequence to its end and searches
// the state directory: the token, the passcode and the Password option's
// value are nowhere, and the done record still says which run it was.
func TestFinishedRunLeavesNoSecrets(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "succeeded", true: "failed"}[fail]
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			snap := filepath.Join(work, "snapshot")
			steps := []map[string]any{apiKeyStep("key", filepath.Join(work, "key")), snapshotStep("snap", snap)}
			if fail {
				steps = append(steps, tsStep("fail", stepdefs.TypeRunCommandLine, map[string]string{"CommandLine": "exit 4"}))
			}
			rs := secretsServer(t, steps...)
			state := filepath.Join(work, "state")
			var out syncBuffer
			err := secretsAgent(t, rs, state, &out).Run(context.Background(), agent.State{Server: "https://x"}, false)
			if fail != (err != nil) {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			if b, err := os.ReadFile(filepath.Join(work, "key")); err != nil || string(b) != canaryAPIKey {
				t.Fatalf("the step did not get its Password option: %q %v", b, err)
			}
			token := readSnapshot(t, snap)
			wantNone(t, snap, "passcode (mid-run)", canaryPasscode)
			wantNone(t, state, "passcode", canaryPasscode)
			wantNone(t, state, "session token", token)
			wantNone(t, state, "Password option value", canaryAPIKey)
			if strings.Contains(out.String(), canaryPasscode) || strings.Contains(out.String(), canaryAPIKey) {
				t.Errorf("console shows a secret:\n%s", out.String())
			}
			var done agent.State
			if b, err := os.ReadFile(filepath.Join(state, "agent.done.json")); err != nil {
				t.Errorf("done record: %v", err)
			} else if err := json.Unmarshal(b, &done); err != nil || done.RunID == "" || done.TaskSequenceID != secretsTSID {
				t.Errorf("done record = %s (%v), want the run's ids", b, err)
			}
			if _, err := agent.LoadState(state); !deploy.IsNotFound(err) {
				t.Errorf("state after the run: %v", err)
			}
		})
	}
}

// TestRebootIntoDeployedOSLeavesNoSecrets runs the boot-image half of a
// sequence up to its reboot (staging the resume into a directory that
// stands for the deployed root), checks what is left in the state
// directory and what was staged, then resumes from the staged directory as
// the installed OS would and checks it again after the end.
func TestRebootIntoDeployedOSLeavesNoSecrets(t *testing.T) {
	work := t.TempDir()
	snap, root := filepath.Join(work, "snapshot"), filepath.Join(work, "root")
	rs := secretsServer(t,
		apiKeyStep("key", filepath.Join(work, "key")),
		snapshotStep("snap", snap),
		tsStep("reboot", stepdefs.TypeReboot, map[string]string{"RebootRequested": "HD"}),
		tsStep("after", stepdefs.TypeRunCommandLine, map[string]string{"CommandLine": "echo after > " + filepath.Join(work, "after")}))
	exe := filepath.Join(work, "imprint-agent")
	if err := os.WriteFile(exe, []byte("#!agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(work, "state")
	var out syncBuffer
	a := secretsAgent(t, rs, state, &out)
	a.Vars["OSPartition"] = "/dev/vda2"
	a.Executable = exe
	a.Resume = agent.BootImageResume{Mount: func(string, string) (string, func() error, error) {
		return root, func() error { return nil }, nil
	}}
	if err := a.Run(context.Background(), agent.State{Server: "https://x"}, false); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	token := readSnapshot(t, snap)
	// Mid-run and at the reboot: the token is there to resume with (in
	// agent.json only), the passcode nowhere.
	wantNone(t, snap, "passcode (mid-run)", canaryPasscode)
	wantNone(t, state, "passcode (at the reboot)", canaryPasscode)
	if hits := filesWith(t, state, token); len(hits) != 1 || hits[0] != "agent.json" {
		t.Errorf("token at the reboot in %q, want agent.json only", hits)
	}
	if hits := filesWith(t, state, canaryAPIKey); len(hits) > 1 || len(hits) == 1 && hits[0] != "agent.json" {
		t.Errorf("Password option value at the reboot in %q, want at most agent.json", hits)
	}
	// Staged onto the deployed disk: the token (in agent.json), nothing else.
	staged := filepath.Join(root, "var/lib/imprint-agent")
	wantNone(t, root, "passcode (staged)", canaryPasscode)
	wantNone(t, root, "Password option value (staged)", canaryAPIKey)
	if hits := filesWith(t, staged, token); len(hits) != 1 || hits[0] != "agent.json" {
		t.Errorf("token staged in %q, want agent.json only", hits)
	}
	if fi, err := os.Stat(filepath.Join(staged, "agent.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("staged agent.json: %v %v, want mode 0600", fi, err)
	}

	// The installed OS resumes from the staged state and finishes.
	resume := &fakeResume{}
	b := secretsAgent(t, rs, staged, &out)
	b.Vars, b.Resume = nil, resume
	if err := b.ResumeRun(context.Background()); err != nil {
		t.Fatalf("resume: %v\n%s", err, out.String())
	}
	if got, _ := os.ReadFile(filepath.Join(work, "after")); string(got) != "after\n" {
		t.Fatalf("the step after the reboot did not run: %q\n%s", got, out.String())
	}
	if resume.removed != 1 {
		t.Errorf("resume unit removed %d times", resume.removed)
	}
	wantNone(t, root, "passcode (after the run)", canaryPasscode)
	wantNone(t, root, "session token (after the run)", token)
	wantNone(t, root, "Password option value (after the run)", canaryAPIKey)
}

// TestRebootInPlaceKeepsSecretVariables: a reboot inside the installed OS
// (the state directory stays where it is) keeps a Password option's
// variable, and a Set variable copy of it, for the steps after it, in
// agent.json only; the end of the run removes them.
func TestRebootInPlaceKeepsSecretVariables(t *testing.T) {
	work := t.TempDir()
	reuse := filepath.Join(work, "reused")
	rs := secretsServer(t,
		apiKeyStep("key", filepath.Join(work, "key")),
		tsStep("copy", stepdefs.TypeSetVariable, map[string]string{"VariableName": "KeyCopy", "VariableValue": "%ApiKey%"}),
		tsStep("reboot", stepdefs.TypeReboot, map[string]string{"RebootRequested": "HD"}),
		tsStep("after", stepdefs.TypeRunCommandLine, map[string]string{"CommandLine": "printf %s %ApiKey%/%KeyCopy% > " + reuse}))
	state := filepath.Join(work, "state")
	var out syncBuffer
	a := secretsAgent(t, rs, state, &out)
	a.Resume = &fakeResume{}
	if err := a.Run(context.Background(), agent.State{Server: "https://x"}, false); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	token := tokenIn(t, state)
	wantNone(t, state, "passcode (at the reboot)", canaryPasscode)
	if hits := filesWith(t, state, canaryAPIKey); len(hits) != 1 || hits[0] != "agent.json" {
		t.Errorf("Password option value at the reboot in %q, want agent.json only", hits)
	}
	b := secretsAgent(t, rs, state, &out)
	b.Vars, b.Resume = nil, &fakeResume{}
	if err := b.ResumeRun(context.Background()); err != nil {
		t.Fatalf("resume: %v\n%s", err, out.String())
	}
	if got, _ := os.ReadFile(reuse); string(got) != canaryAPIKey+"/"+canaryAPIKey {
		t.Errorf("the step after the reboot saw ApiKey/KeyCopy = %q", got)
	}
	wantNone(t, state, "passcode (after the run)", canaryPasscode)
	wantNone(t, state, "session token (after the run)", token)
	wantNone(t, state, "Password option value (after the run)", canaryAPIKey)
}
