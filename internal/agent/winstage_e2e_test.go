package agent_test

// The Windows continuation, on Linux against the real server: what the
// boot image stages on the Windows partition (a directory standing for
// it), that the agent started from the staged state resumes after the
// last completed step, and what is left once the run is over.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

const canaryAdminPassword = "Canary-AdminPw-8086"

func TestWindowsContinuationResumesAndCleansUp(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	root := filepath.Join(work, "C") // the Windows partition
	winExe := filepath.Join(work, "imprint-agent.exe")
	exeBytes := []byte("MZ\x90\x00 the windows/amd64 agent")
	if err := os.WriteFile(winExe, exeBytes, 0o755); err != nil {
		t.Fatal(err)
	}
	ran := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(work, name))
		return string(b)
	}
	rs := secretsServerConfig(t, func(c *server.Config) { c.WindowsAgent = winExe },
		tsStep("admin", stepdefs.TypeEnableAdministrator, map[string]string{"AdminPassword": canaryAdminPassword}),
		apiKeyStep("key", filepath.Join(work, "key")),
		tsStep("before", stepdefs.TypeRunCommandLine, map[string]string{"CommandLine": "echo before >> " + filepath.Join(work, "before")}),
		tsStep("reboot", stepdefs.TypeReboot, map[string]string{"RebootRequested": "HD"}),
		tsStep("after", stepdefs.TypeRunCommandLine, map[string]string{"CommandLine": "echo after >> " + filepath.Join(work, "after")}))

	// What Prepare operating system stages (the boot image's session
	// downloads the agent; here a session of the test's own).
	m := rs.machine(t)
	if _, err := m.Token(ctx, client.TokenRequest{Method: "passcode", Passcode: canaryPasscode,
		Device: client.DeviceInfo{UUID: "6a0c1d2e-0000-4000-8000-00000000b001"}}); err != nil {
		t.Fatal(err)
	}
	var protected []string
	protect := func(dir string) error { protected = append(protected, dir); return nil }
	sum, err := agent.StageWindowsAgent(ctx, root, m, rs.caPEM, protect)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum) != 64 {
		t.Errorf("SHA-256 %q", sum)
	}
	// A Windows tree the cleanup must leave alone, and the answer file
	// Setup did not delete.
	for p, body := range map[string]string{
		"Windows/System32/config/SOFTWARE":        "regf",
		"Windows/Panther/Unattend.xml":            "<unattend/>",
		"Windows/Setup/Scripts/SetupComplete.cmd": "rem Written by Imprint\r\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The boot image's half: up to the reboot, which stages the run.
	state := filepath.Join(work, "state")
	var out syncBuffer
	a := secretsAgent(t, rs, state, &out)
	a.Vars["OSPartition"] = "/dev/nvme0n1p3"
	a.Vars["OSDiskLayout"] = "windows-uefi"
	a.BootImage = true
	var mounted []string
	a.Resume = agent.BootImageResume{
		Mount: func(string, string) (string, func() error, error) {
			t.Error("a Windows target mounted as ext4")
			return "", nil, os.ErrInvalid
		},
		MountNTFS: func(_ context.Context, spec, _ string) (string, func() error, error) {
			mounted = append(mounted, spec)
			return root, func() error { return nil }, nil
		},
		Protect: protect,
	}
	if err := a.Run(ctx, agent.State{Server: "https://" + rs.APIAddr().String(), CAPEM: string(rs.caPEM)}, false); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if ran("before") != "before\n" || ran("after") != "" {
		t.Fatalf("before the reboot: before=%q after=%q\n%s", ran("before"), ran("after"), out.String())
	}
	if !slices.Equal(mounted, []string{"/dev/nvme0n1p3"}) {
		t.Errorf("mounted %q", mounted)
	}

	// The contract paths.
	staged := filepath.Join(root, filepath.FromSlash(agent.WindowsStateDir))
	if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(agent.WindowsAgentPath))); err != nil || !bytes.Equal(b, exeBytes) {
		t.Errorf("staged agent = %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(staged, agent.WindowsCAFile)); err != nil || !bytes.Equal(b, rs.caPEM) {
		t.Errorf("staged CA: %v", err)
	}
	if n := strings.Count(strings.Join(protected, "\n"), staged); n < 3 {
		t.Errorf("state directory protected %d times (%q), want before and after each staging", n, protected)
	}
	st, err := agent.LoadState(staged)
	if err != nil {
		t.Fatal(err)
	}
	if st.BootImage || st.Token == "" || st.Secrets != nil || st.CAPEM == "" {
		t.Errorf("staged state: boot image %v, token %v, secrets %d, CA %v", st.BootImage, st.Token != "", len(st.Secrets), st.CAPEM != "")
	}
	if _, err := os.Stat(filepath.Join(staged, "logs", "imprint-agent.log")); err != nil {
		t.Errorf("staged logs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(staged, "content")); err == nil {
		t.Errorf("the content cache was staged")
	}
	token := st.Token
	// No secret variable and no passcode reached the partition (plain,
	// JSON-escaped and UTF-16LE); the token only in agent.json.
	wantNone(t, root, "passcode (staged)", canaryPasscode)
	wantNone(t, root, "AdminPassword (staged)", canaryAdminPassword)
	wantNone(t, root, "Password option value (staged)", canaryAPIKey)
	if hits := filesWith(t, root, token); !slices.Equal(hits, []string{agent.WindowsStateDir + "/agent.json"}) {
		t.Errorf("token staged in %q, want agent.json only", hits)
	}

	// Windows starts the staged agent: `resume` from the staged state.
	var removeAfterExit []string
	b := secretsAgent(t, rs, staged, &out)
	b.Vars, b.Resume = nil, &fakeResume{}
	b.Cleanup = agent.WindowsCleanup{Root: root, RemoveAfterExit: func(dir string) error {
		removeAfterExit = append(removeAfterExit, dir)
		// What the detached cmd.exe does once the agent has exited.
		return agent.RemoveAfterExit(dir)
	}}
	if err := b.ResumeRun(ctx); err != nil {
		t.Fatalf("resume: %v\n%s", err, out.String())
	}
	if ran("before") != "before\n" || ran("after") != "after\n" {
		t.Errorf("resumed at the wrong step: before=%q after=%q\n%s", ran("before"), ran("after"), out.String())
	}
	runs, err := rs.admin.Runs(ctx, client.RunFilter{TaskSequenceID: secretsTSID})
	if err != nil || len(runs) != 1 || runs[0].State != deploy.RunSucceeded {
		t.Errorf("server's runs: %v %v", runs, err)
	}

	// The end of the run: state, CA, answer file and agent gone, the
	// rest of Windows kept, and no secret anywhere.
	if want := []string{filepath.Join(root, "ProgramData", "Imprint")}; !slices.Equal(removeAfterExit, want) {
		t.Errorf("removal after exit of %q, want %q", removeAfterExit, want)
	}
	for _, gone := range []string{agent.WindowsDir, "Windows/Panther/Unattend.xml"} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s is left after the run", gone)
		}
	}
	for _, kept := range []string{"Windows/System32/config/SOFTWARE", "Windows/Setup/Scripts/SetupComplete.cmd", "ProgramData"} {
		if _, err := os.Stat(filepath.Join(root, kept)); err != nil {
			t.Errorf("%s: %v", kept, err)
		}
	}
	wantNone(t, root, "session token (after the run)", token)
	wantNone(t, root, "passcode (after the run)", canaryPasscode)
	wantNone(t, root, "AdminPassword (after the run)", canaryAdminPassword)
}

func TestSelfDeleteCommand(t *testing.T) {
	got, err := agent.SelfDeleteCommand(`C:\ProgramData\Imprint`)
	if err != nil {
		t.Fatal(err)
	}
	want := `cmd.exe /d /q /s /c "for /l %i in (1,1,60) do (ping -n 3 127.0.0.1 >nul & rmdir /s /q "C:\ProgramData\Imprint" >nul 2>&1 & if not exist "C:\ProgramData\Imprint" exit 0)"`
	if got != want {
		t.Errorf("SelfDeleteCommand =\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{"", `C:\a"b`, `C:\%TEMP%`, `C:\a&calc`, "C:\\a\r\nb", `C:\a|b`, `C:\a!b`} {
		if _, err := agent.SelfDeleteCommand(bad); err == nil {
			t.Errorf("SelfDeleteCommand(%q): no error", bad)
		}
	}
}
