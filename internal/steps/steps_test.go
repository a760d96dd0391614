package steps_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/app"
	"github.com/imprint-osd/imprint/internal/steps/cmdline"
	"github.com/imprint-osd/imprint/internal/steps/powershell"
	"github.com/imprint-osd/imprint/internal/steps/reboot"
	"github.com/imprint-osd/imprint/internal/steps/script"
	"github.com/imprint-osd/imprint/internal/steps/serverscript"
	"github.com/imprint-osd/imprint/internal/steps/setvar"
)

func newEnv(t *testing.T, settings, content map[string]string) (*sequence.Env, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	if content == nil {
		content = map[string]string{}
	}
	return &sequence.Env{Vars: sequence.NewVars(), Settings: settings, Content: content, Log: &log,
		Step: &deploy.Step{Name: "test", ContentItems: map[string]string{}}}, &log
}

func TestSetVariable(t *testing.T) {
	env, _ := newEnv(t, map[string]string{"VariableName": "OSDComputerName", "VariableValue": "PC-1"}, nil)
	if _, err := (setvar.Step{}).Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if got := env.Vars.Value("osdcomputername"); got != "PC-1" {
		t.Errorf("OSDComputerName = %q", got)
	}
	env, _ = newEnv(t, map[string]string{"VariableName": "_Internal", "VariableValue": "x"}, nil)
	if _, err := (setvar.Step{}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("setting a _ variable: err = %v", err)
	}
}

func TestRunCommandLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "payload.txt"), []byte("from content"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		settings map[string]string
		content  string
		wantErr  string
		wantOut  string
		wantCode int
	}{
		"output":            {settings: map[string]string{"CommandLine": "echo hello; echo oops >&2"}, wantOut: "hello\noops\n"},
		"content dir":       {settings: map[string]string{"CommandLine": "cat payload.txt"}, content: dir, wantOut: "from content"},
		"success code":      {settings: map[string]string{"CommandLine": "exit 3", "SuccessCodes": "0,3"}, wantCode: 3},
		"failure code":      {settings: map[string]string{"CommandLine": "echo bad; exit 4", "SuccessCodes": "0"}, wantCode: 4, wantOut: "bad\n", wantErr: "exit code 4 is not a success code (0)"},
		"timeout":           {settings: map[string]string{"CommandLine": "sleep 30", "Timeout": "0.005"}, wantCode: -1, wantErr: "did not finish within"},
		"bad success codes": {settings: map[string]string{"CommandLine": "true", "SuccessCodes": "zero"}, wantErr: `success code "zero" is not a number`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env, log := newEnv(t, tc.settings, map[string]string{"Content": tc.content})
			res, err := (cmdline.Step{}).Run(context.Background(), env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tc.wantCode || res.Output != tc.wantOut {
				t.Errorf("result = %d %q, want %d %q", res.ExitCode, res.Output, tc.wantCode, tc.wantOut)
			}
			if !strings.Contains(log.String(), tc.wantOut) {
				t.Errorf("log %q lacks the output", log.String())
			}
		})
	}
}

func TestPowerShellNeedsPwsh(t *testing.T) {
	env, _ := newEnv(t, map[string]string{"Script": "Write-Output hi"}, nil)
	s := powershell.Step{LookPath: func(string) (string, error) { return "", errors.New("not found") }}
	_, err := s.Run(context.Background(), env)
	if err == nil || err.Error() != "Run PowerShell script needs pwsh, which is not installed on this machine" {
		t.Fatalf("err = %v", err)
	}
}

// fakeSource serves applications from folders made by the test.
type fakeSource struct {
	dirs     map[string]string
	versions map[string]*deploy.ContentVersion
	fetched  []string
}

func (f *fakeSource) Fetch(_ context.Context, ref deploy.Ref) (string, error) {
	f.fetched = append(f.fetched, ref.String())
	return f.dirs[ref.String()], nil
}

func (f *fakeSource) ContentVersion(_ context.Context, ref deploy.Ref) (*deploy.ContentVersion, error) {
	v, ok := f.versions[ref.String()]
	if !ok {
		return nil, deploy.Errorf(deploy.KindNotFound, "content %s not found", ref)
	}
	return v, nil
}

const (
	appA = "aaaaaaaa-0000-0000-0000-000000000001:1"
	appB = "bbbbbbbb-0000-0000-0000-000000000002:1"
	appC = "cccccccc-0000-0000-0000-000000000003:2"
)

func newSource(t *testing.T, out string) *fakeSource {
	t.Helper()
	src := &fakeSource{dirs: map[string]string{}, versions: map[string]*deploy.ContentVersion{}}
	for _, ref := range []string{appA, appB, appC} {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "install.sh"), []byte("echo "+ref[:1]+" >> "+out+"\nexit ${CODE:-0}\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		src.dirs[ref] = d
		src.versions[ref] = &deploy.ContentVersion{InstallationCommandLine: deploy.StrPtr("sh install.sh")}
	}
	return src
}

func TestInstallApplications(t *testing.T) {
	out := filepath.Join(t.TempDir(), "installed")
	src := newSource(t, out)
	src.versions[appB].InstallationDependencies = []string{appC}
	src.versions[appC].InstallationCommandLine = deploy.StrPtr("CODE=3010 sh install.sh")
	env, _ := newEnv(t, map[string]string{"BaseVariableName": "Apps"}, nil)
	env.Step.ContentItems["Applications"] = appA
	if err := env.Vars.SetList("Apps", []string{appB, appA}); err != nil {
		t.Fatal(err)
	}
	res, err := (app.Step{Source: src, Multiple: true}).Run(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if !res.RebootRequested {
		t.Error("3010 from a dependency did not request a reboot")
	}
	got, _ := os.ReadFile(out)
	if diff := cmp.Diff("a\nc\nb\n", string(got)); diff != "" {
		t.Errorf("install order (-want +got):\n%s", diff)
	}

	// A single application whose exit code is not a success code fails.
	src.versions[appA].InstallationCommandLine = deploy.StrPtr("CODE=5 sh install.sh")
	src.versions[appA].InstallationSuccessCodes = deploy.StrPtr("0,1")
	env, _ = newEnv(t, nil, nil)
	env.Step.ContentItems["Application"] = appA
	if _, err := (app.Step{Source: src}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "exit code 5 is not a success code (0,1)") {
		t.Errorf("err = %v", err)
	}
}

func TestReboot(t *testing.T) {
	var slept time.Duration
	s := reboot.Step{Sleep: func(_ context.Context, d time.Duration) error { slept = d; return nil }}
	env, log := newEnv(t, map[string]string{"RebootRequested": "HD", "RebootMessage": "Bye", "RebootDelay": "5"}, nil)
	res, err := s.Run(context.Background(), env)
	if err != nil || !res.RebootRequested || slept != 5*time.Second || !strings.Contains(log.String(), "Bye") {
		t.Errorf("res = %+v, err = %v, slept %v, log %q", res, err, slept, log.String())
	}
	env, _ = newEnv(t, map[string]string{"RebootRequested": "WinPE"}, nil)
	if _, err := s.Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), `"WinPE" is not supported`) {
		t.Errorf("WinPE: err = %v", err)
	}
}

type fakeServer struct{ got client.ServerScriptRequest }

func (f *fakeServer) ServerScript(_ context.Context, req client.ServerScriptRequest) (*client.ServerScriptResult, error) {
	f.got = req
	return &client.ServerScriptResult{Variables: map[string]string{"OSDComputerName": "PC-" + req.Variables["SerialNumber"]}, Output: "done\n"}, nil
}

func TestServerScript(t *testing.T) {
	fs := &fakeServer{}
	env, _ := newEnv(t, map[string]string{"ScriptName": "name.sh", "Timeout": "2"}, nil)
	env.Vars.SetInternal("SerialNumber", "123")
	env.Vars.SetInternalSecret("Passcode", "hunter2")
	if _, err := (serverscript.Step{Server: fs}).Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if got := env.Vars.Value("OSDComputerName"); got != "PC-123" {
		t.Errorf("OSDComputerName = %q", got)
	}
	if _, ok := fs.got.Variables["Passcode"]; ok {
		t.Error("a secret variable was sent to the server")
	}
	if fs.got.TimeoutSeconds != 120 || fs.got.ScriptName != "name.sh" {
		t.Errorf("request = %+v", fs.got)
	}
}

func TestCustomScriptStep(t *testing.T) {
	dir := t.TempDir()
	body := `echo "greeting is $Greeting"
printf '{"name":"Answer","value":"%s and 42"}\n' "$IMPRINT_VAR_GREETING" >> "$IMPRINT_VARS_FILE"
`
	if err := os.WriteFile(filepath.Join(dir, "step.sh"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	env, log := newEnv(t, map[string]string{"ScriptName": "step.sh", "Greeting": "hello"}, map[string]string{"Content": dir})
	res, err := (script.Step{ScriptOption: "ScriptName", ContentOption: "Content"}).Run(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Vars.Value("Answer"); got != "hello and 42" {
		t.Errorf("Answer = %q", got)
	}
	if !strings.Contains(res.Output, "greeting is hello") || !strings.Contains(log.String(), "Script set Answer") {
		t.Errorf("output %q, log %q", res.Output, log.String())
	}
	env, _ = newEnv(t, map[string]string{"ScriptName": "step.exe"}, map[string]string{"Content": dir})
	if err := os.WriteFile(filepath.Join(dir, "step.exe"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (script.Step{ScriptOption: "ScriptName"}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "unknown extension") {
		t.Errorf("err = %v", err)
	}
}

func TestVarsFileRoundTrip(t *testing.T) {
	f := filepath.Join(t.TempDir(), "vars")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"A", "1"}, {"B", "two\nlines"}} {
		if err := script.AppendVar(f, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := script.ReadVars(f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][2]string{{"A", "1"}, {"B", "two\nlines"}}, got); diff != "" {
		t.Error(diff)
	}
	if err := script.AppendVar("", "A", "1"); err == nil || !strings.Contains(err.Error(), "IMPRINT_VARS_FILE is not set") {
		t.Errorf("err = %v", err)
	}
}
