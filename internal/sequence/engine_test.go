package sequence_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

func TestWalkOrderDisabledAndConditions(t *testing.T) {
	h := newHarness(t, fileJournal(t))
	ts := tsv("ts", 1, steps(
		st("a", sets("Mode=full")),
		grp("g", steps(
			st("b", disabled()),
			st("c", cond(q("Mode", "equals", "light"))),
			st("d", cond(q("mode", "equals", "FULL"))),
		)),
		grp("off", steps(st("e")), disabled()),
		grp("no", steps(st("f"), grp("inner", steps(st("h")))), cond(q("Mode", "notExists", ""))),
		st("z"),
	))
	out := h.run(t, ts, nil)
	if diff := cmp.Diff(sequence.Outcome{State: deploy.RunSucceeded}, out); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "g/d", "z"}, h.rec.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	want := []string{
		"a=succeeded", "g/b=disabled", "g/c=skipped", "g/d=succeeded", "g=succeeded",
		"off=disabled", "off/e=disabled",
		"no=skipped", "no/f=skipped", "no/inner=skipped", "no/inner/h=skipped",
		"z=succeeded",
	}
	if diff := cmp.Diff(want, h.outcomes()); diff != "" {
		t.Errorf("end events (-want +got):\n%s", diff)
	}
}

func TestConditionOperators(t *testing.T) {
	vars := map[string]string{"Make": "Dell Inc.", "Memory": "8192", "Build": "9", "Empty": ""}
	tests := []struct {
		field, op, value string
		want             bool
	}{
		{"MAKE", "equals", "dell inc.", true},
		{"Make", "equals", "HP", false},
		{"Make", "notEquals", "HP", true},
		{"Make", "notEquals", "DELL INC.", false},
		{"Make", "contains", "ell", true},
		{"Make", "contains", "HP", false},
		{"Make", "notContains", "HP", true},
		{"Make", "notContains", "dell", false},
		{"Make", "startsWith", "DELL", true},
		{"Make", "startsWith", "Inc", false},
		{"Make", "endsWith", "inc.", true},
		{"Make", "endsWith", "Dell", false},
		{"Memory", "greaterThan", "4096", true},
		{"Memory", "greaterThan", "16384", false},
		{"Build", "greaterThan", "10", false}, // numeric: 9 < 10 (as text "9" > "10")
		{"Build", "lessThan", "10", true},
		{"Memory", "lessThan", "8192.5", true},
		{"Memory", "equals", "8192.0", true}, // numeric equality
		{"Memory", "exists", "", true},
		{"Empty", "exists", "", true},
		{"Missing", "exists", "", false},
		{"Missing", "notExists", "", true},
		{"Make", "notExists", "", false},
		{"Make", "greaterThan", "apple", true}, // text comparison when not numbers
		{"Make", "lessThan", "apple", false},
	}
	for _, tt := range tests {
		t.Run(tt.field+" "+tt.op+" "+tt.value, func(t *testing.T) {
			c, err := sequence.ParseCondition(q(tt.field, tt.op, tt.value))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Query.Eval(sequence.VarsFrom(vars).Get); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConditionNestedAndOrInEngine(t *testing.T) {
	// (Make equals Dell AND (Memory > 4096 OR IsVM equals true)) with the
	// value of the inner item given as %MinMem%.
	nested := `{"operator":"and","items":[
		{"field":"Make","operator":"equals","value":"Dell"},
		{"operator":"or","items":[
			{"field":"Memory","operator":"greaterThan","value":"%MinMem%"},
			{"field":"IsVM","operator":"equals","value":"True"}]}]}`
	tests := map[string]struct {
		vars map[string]string
		want []string
	}{
		"and with or true by memory": {map[string]string{"Make": "Dell", "Memory": "8192", "MinMem": "4096"}, []string{"s"}},
		"and with or true by vm":     {map[string]string{"Make": "Dell", "Memory": "1024", "MinMem": "4096", "IsVM": "true"}, []string{"s"}},
		"or false":                   {map[string]string{"Make": "Dell", "Memory": "1024", "MinMem": "4096"}, nil},
		"and false":                  {map[string]string{"Make": "HP", "Memory": "8192", "MinMem": "4096"}, nil},
		"expansion matters":          {map[string]string{"Make": "Dell", "Memory": "8192", "MinMem": "16384"}, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.run(t, tsv("ts", 1, steps(st("s", cond(nested)))), sequence.VarsFrom(tt.vars))
			if diff := cmp.Diff(tt.want, h.rec.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadConditionFailsStep(t *testing.T) {
	h := newHarness(t, nil)
	out := h.run(t, tsv("ts", 1, steps(st("s", cond(`{"operator":"xor","items":[]}`)))), nil)
	if out.State != deploy.RunFailed || !strings.Contains(out.Message, `"xor"`) {
		t.Errorf("outcome = %+v, want failed naming the bad operator", out)
	}
}

func TestContinueOnError(t *testing.T) {
	tests := map[string]struct {
		steps    []deploy.Step
		calls    []string
		outcomes []string
		want     sequence.Outcome
	}{
		"failing step stops the sequence": {
			steps:    steps(st("a"), st("b", fails()), st("c")),
			calls:    []string{"a", "b"},
			outcomes: []string{"a=succeeded", "b=failed"},
			want:     sequence.Outcome{State: deploy.RunFailed, FailedStep: "b", FailedPath: "b", Message: "fake step failed"},
		},
		"step continueOnError": {
			steps:    steps(st("a", fails(), coe()), st("b")),
			calls:    []string{"a", "b"},
			outcomes: []string{"a=ignored", "b=succeeded"},
			want:     sequence.Outcome{State: deploy.RunSucceeded},
		},
		"failure fails group and parent": {
			steps:    steps(grp("g1", steps(grp("g2", steps(st("a", fails()), st("b"))), st("c"))), st("d")),
			calls:    []string{"g1/g2/a"},
			outcomes: []string{"g1/g2/a=failed", "g1/g2=failed", "g1=failed"},
			want:     sequence.Outcome{State: deploy.RunFailed, FailedStep: "g1/g2/a", FailedPath: "g1/g2/a", Message: "fake step failed"},
		},
		"group continueOnError absorbs a member's failure": {
			steps:    steps(grp("g", steps(st("a", fails()), st("b")), coe()), st("c")),
			calls:    []string{"g/a", "c"},
			outcomes: []string{"g/a=failed", "g=ignored", "c=succeeded"},
			want:     sequence.Outcome{State: deploy.RunSucceeded},
		},
		"inner group continueOnError inside a plain group": {
			steps:    steps(grp("outer", steps(grp("inner", steps(st("a", fails()), st("b")), coe()), st("c"))), st("d")),
			calls:    []string{"outer/inner/a", "outer/c", "d"},
			outcomes: []string{"outer/inner/a=failed", "outer/inner=ignored", "outer/c=succeeded", "outer=succeeded", "d=succeeded"},
			want:     sequence.Outcome{State: deploy.RunSucceeded},
		},
		"ignored step inside a group does not fail it": {
			steps:    steps(grp("g", steps(st("a", fails(), coe()), st("b"))), st("c")),
			calls:    []string{"g/a", "g/b", "c"},
			outcomes: []string{"g/a=ignored", "g/b=succeeded", "g=succeeded", "c=succeeded"},
			want:     sequence.Outcome{State: deploy.RunSucceeded},
		},
		"unknown step type fails": {
			steps:    steps(st("a", typ("00000000-dead-beef-0000-000000000000")), st("b")),
			outcomes: []string{"a=failed"},
			want: sequence.Outcome{State: deploy.RunFailed, FailedStep: "a", FailedPath: "a",
				Message: `no step is registered for type 00000000-dead-beef-0000-000000000000 (step "a")`},
		},
		"panicking step fails": {
			steps:    steps(st("a", set2("panic", "true"), coe()), st("b")),
			calls:    []string{"a", "b"},
			outcomes: []string{"a=ignored", "b=succeeded"},
			want:     sequence.Outcome{State: deploy.RunSucceeded},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, fileJournal(t))
			out := h.run(t, tsv("ts", 1, tt.steps), nil)
			if diff := cmp.Diff(tt.want, out); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.calls, h.rec.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.outcomes, h.outcomes()); diff != "" {
				t.Errorf("end events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSettingsExpandedAndExposed(t *testing.T) {
	h := newHarness(t, nil)
	vars := sequence.VarsFrom(map[string]string{"Name": "pc-%X%", "X": "no"})
	ts := tsv("ts", 1, steps(
		st("a", set2("Message", "hello %name% 100%% %Unknown%"), set2("Target", "%Message%")),
		st("b", set2("Echo", "%Message%")),
	))
	h.run(t, ts, vars)
	if diff := cmp.Diff(map[string]string{"Message": "hello pc-%X% 100% %Unknown%", "Target": "%Message%"}, h.rec.settings["a"]); diff != "" {
		t.Errorf("settings of a (-want +got):\n%s", diff)
	}
	// Settings stay as variables after their step (DeployR behaviour).
	if got := h.rec.settings["b"]["Echo"]; got != "hello pc-%X% 100% %Unknown%" {
		t.Errorf("b saw Echo = %q", got)
	}
	if got := vars.Value("MESSAGE"); got != "hello pc-%X% 100% %Unknown%" {
		t.Errorf("variable Message = %q after the run", got)
	}
}

func TestReadOnlyVariableFromStep(t *testing.T) {
	h := newHarness(t, nil)
	out := h.run(t, tsv("ts", 1, steps(st("a", sets("_SMSTSLogPath=x")))), nil)
	if out.State != deploy.RunFailed || !strings.Contains(out.Message, `variable "_SMSTSLogPath" is read-only`) {
		t.Errorf("outcome = %+v, want a read-only failure", out)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	j := fileJournal(t)
	h := newHarness(t, j)
	h.e.SecretOption = func(_ *deploy.Step, option string) bool { return option == "Password" }
	vars := sequence.NewVars()
	if err := vars.SetSecret("DomainJoinPassword", "Tr0ub4dor"); err != nil {
		t.Fatal(err)
	}
	ts := tsv("ts", 1, steps(
		st("a", set2("log", "joining with %DomainJoinPassword%")),
		st("b", set2("Password", "opt-secret-42"), set2("log", "local admin opt-secret-42"), fails(), coe()),
	))
	h.run(t, ts, vars)
	logText := h.log.String()
	if strings.Contains(logText, "Tr0ub4dor") || strings.Contains(logText, "opt-secret-42") {
		t.Errorf("log leaks a secret:\n%s", logText)
	}
	if !strings.Contains(logText, "joining with ********") || !strings.Contains(logText, "local admin ********") {
		t.Errorf("log lacks the redacted lines:\n%s", logText)
	}
	if !vars.IsSecret("Password") {
		t.Error("Password option not marked secret")
	}
	b, err := os.ReadFile(j.Path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := j.Load()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range st.Vars {
		if v.Name == "DomainJoinPassword" {
			found = v.Secret && v.Value == "Tr0ub4dor"
		}
	}
	if !found {
		t.Errorf("journal does not keep the secret flagged:\n%s", b)
	}
	fi, err := os.Stat(j.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode = %v, want 0600", fi.Mode().Perm())
	}
}

// fetcher is a content fetcher standing in for the agent's download cache.
type fetcher struct {
	fetched []string
	fail    map[string]bool
}

func (f *fetcher) Fetch(_ context.Context, ref deploy.Ref) (string, error) {
	f.fetched = append(f.fetched, ref.String())
	if f.fail[ref.String()] {
		return "", errors.New("checksum mismatch")
	}
	return "/cache/" + ref.ID + "/" + ref.String()[len(ref.ID)+1:], nil
}

func TestContentPaths(t *testing.T) {
	h := newHarness(t, nil)
	f := &fetcher{fail: map[string]bool{"bad:1": true}}
	h.e.Fetcher = f
	vars := sequence.VarsFrom(map[string]string{"AppVer": "3"})
	ts := tsv("ts", 1, steps(
		st("a", content("Content", "ABC:%AppVer%"), content("Unused", ""), sets("Seen=%_CONTENT-Content%")),
		st("b", content("Installer", "bad:1"), coe()),
		st("c", content("Broken", "not-a-ref")),
	))
	out := h.run(t, ts, vars)
	if diff := cmp.Diff([]string{"abc:3", "bad:1"}, f.fetched); diff != "" {
		t.Errorf("fetched (-want +got):\n%s", diff)
	}
	if got := vars.Value("_CONTENT-Content"); got != "/cache/abc/3" {
		t.Errorf("_CONTENT-Content = %q", got)
	}
	if diff := cmp.Diff(map[string]string{"Content": "/cache/abc/3"}, h.rec.content["a"]); diff != "" {
		t.Errorf("env.Content (-want +got):\n%s", diff)
	}
	if _, ok := vars.Get("_CONTENT-Unused"); ok {
		t.Error("empty content option got a _CONTENT variable")
	}
	// The step sees the variable only through expansion of the *next*
	// step's settings, as settings are expanded before content is fetched.
	if got := vars.Value("Seen"); got != "%_CONTENT-Content%" {
		t.Errorf("Seen = %q", got)
	}
	if diff := cmp.Diff([]string{"a"}, h.rec.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a=succeeded", "b=ignored", "c=failed"}, h.outcomes()); diff != "" {
		t.Errorf("end events (-want +got):\n%s", diff)
	}
	if out.FailedStep != "c" || !strings.Contains(out.Message, `content option "Broken"`) {
		t.Errorf("outcome = %+v, want c failing on its content option", out)
	}
	if err := vars.Set("_CONTENT-Content", "x"); err == nil {
		t.Error("_CONTENT variable is writable")
	}
}

func TestRunTaskSequenceNesting(t *testing.T) {
	child := tsv("child", 2, steps(st("x", sets("Count=%Count%+1")), st("y", cond(q("Skip", "notExists", "")))))
	parent := tsv("parent", 1, steps(
		runTS("r1", "CHILD:2"),
		st("set", sets("Skip=1")),
		runTS("r2", "child:%ChildVer%"),
	))
	h := newHarness(t, fileJournal(t))
	h.e.Loader = loader{"child:2": child}
	vars := sequence.VarsFrom(map[string]string{"Count": "0", "ChildVer": "2"})
	out := h.run(t, parent, vars)
	if out.State != deploy.RunSucceeded {
		t.Fatalf("outcome = %+v", out)
	}
	if diff := cmp.Diff([]string{"r1/x", "r1/y", "set", "r2/x"}, h.rec.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if got := vars.Value("Count"); got != "0+1+1" {
		t.Errorf("Count = %q, want the child run twice", got)
	}
	want := []string{"r1/x=succeeded", "r1/y=succeeded", "r1=succeeded", "set=succeeded", "r2/x=succeeded", "r2/y=skipped", "r2=succeeded"}
	if diff := cmp.Diff(want, h.outcomes()); diff != "" {
		t.Errorf("end events (-want +got):\n%s", diff)
	}
}

func TestRunTaskSequenceFailures(t *testing.T) {
	l := loader{
		"a:1": tsv("a", 1, steps(runTS("ra", "b:1"))),
		"b:1": tsv("b", 1, steps(st("work"), runTS("rb", "a:2"))),
		"a:2": tsv("a", 2, steps(st("never"))),
		"f:1": tsv("f", 1, steps(st("boom", fails()), st("after"))),
	}
	tests := map[string]struct {
		top   []deploy.Step
		calls []string
		state deploy.RunState
		msg   string
	}{
		"cycle": {
			top:   steps(runTS("start", "a:1")),
			calls: []string{"start/ra/work"},
			state: deploy.RunFailed,
			msg:   "task sequence cycle: top:1 -> a:1 -> b:1 -> a:2",
		},
		"child failure fails the step": {
			top:   steps(runTS("r", "f:1"), st("next")),
			calls: []string{"r/boom"},
			state: deploy.RunFailed,
			msg:   "fake step failed",
		},
		"child failure under continueOnError": {
			top:   steps(runTS("r", "f:1", coe()), st("next")),
			calls: []string{"r/boom", "next"},
			state: deploy.RunSucceeded,
		},
		"missing child": {
			top:   steps(runTS("r", "nope:1")),
			state: deploy.RunFailed,
			msg:   "load task sequence nope:1: task sequence nope:1 not found",
		},
		"bad reference": {
			top:   steps(runTS("r", "nope")),
			state: deploy.RunFailed,
			msg:   `setting childTaskSequenceId: reference "nope" is not of the form guid:version`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.e.Loader = l
			out := h.run(t, tsv("top", 1, tt.top), nil)
			if out.State != tt.state || out.Message != tt.msg {
				t.Errorf("outcome = %+v, want state %s message %q", out, tt.state, tt.msg)
			}
			if diff := cmp.Diff(tt.calls, h.rec.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPowerShellConditionWithoutPwsh(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	h := newHarness(t, nil)
	h.e.PowerShell = nil
	out := h.run(t, tsv("ts", 1, steps(st("a", cond(`$TSEnv:IsUEFI -eq 'True'`)), st("b"))), nil)
	want := sequence.Outcome{State: deploy.RunFailed, FailedStep: "a", FailedPath: "a",
		Message: "condition: PowerShell condition needs pwsh, which is not installed"}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	if got := h.rec.Calls(); len(got) != 0 {
		t.Errorf("calls = %v, want none", got)
	}
}

func TestPowerShellConditionHook(t *testing.T) {
	h := newHarness(t, nil)
	var exprs []string
	h.e.PowerShell = func(_ context.Context, expr string, v *sequence.Vars) (bool, error) {
		exprs = append(exprs, expr)
		return v.Value("IsUEFI") == "True", nil
	}
	h.run(t, tsv("ts", 1, steps(st("a", cond(` $TSEnv:IsUEFI `)), st("b", sets("IsUEFI=True")), st("c", cond("$TSEnv:IsUEFI")))), nil)
	if diff := cmp.Diff([]string{"b", "c"}, h.rec.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"$TSEnv:IsUEFI", "$TSEnv:IsUEFI"}, exprs); diff != "" {
		t.Errorf("expressions (-want +got):\n%s", diff)
	}
}

func TestStreamOptionIsNotFetched(t *testing.T) {
	h := newHarness(t, nil)
	f := &fetcher{}
	h.e.Fetcher = f
	var refs map[string]deploy.Ref
	h.e.StreamOption = func(s *deploy.Step, opt string) bool { return s.ID == "a" && opt == "Image" }
	reg := &sequence.Registry{}
	reg.Register(fakeType, sequence.StepFunc(func(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
		if env.ID == "a" {
			refs = env.Refs
		}
		return h.rec.Run(ctx, env)
	}))
	h.e.Registry = reg
	vars := sequence.NewVars()
	ts := tsv("ts", 1, steps(
		st("a", content("Image", "ABC:2"), content("Unattend", "def:1")),
		st("b", content("Image", "img:1")),
	))
	h.run(t, ts, vars)
	if diff := cmp.Diff([]string{"def:1", "img:1"}, f.fetched); diff != "" {
		t.Errorf("fetched (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]deploy.Ref{"Image": {ID: "abc", VersionNo: 2}}, refs); diff != "" {
		t.Errorf("env.Refs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"Unattend": "/cache/def/1"}, h.rec.content["a"]); diff != "" {
		t.Errorf("env.Content (-want +got):\n%s", diff)
	}
}

func TestStoppingEndsAtStepBoundary(t *testing.T) {
	j := fileJournal(t)
	h := newHarness(t, j)
	stop := false
	h.e.OnEvent = func(ev sequence.Event) {
		if ev.Type == sequence.EventStart && ev.ID == "b" {
			stop = true // asked while b runs: b finishes, c does not start
		}
	}
	h.e.Stopping = func() bool { return stop }
	ts := tsv("ts", 1, steps(st("a"), st("b"), st("c")))
	_, err := h.e.Run(context.Background(), ts, sequence.NewVars())
	if !errors.Is(err, sequence.ErrStopped) {
		t.Fatalf("err = %v, want ErrStopped", err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, h.rec.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	stop = false
	if out := h.run(t, ts, nil); out.State != deploy.RunSucceeded {
		t.Errorf("resumed outcome = %+v", out)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, h.rec.Calls()); diff != "" {
		t.Errorf("calls after resume (-want +got):\n%s", diff)
	}
}
