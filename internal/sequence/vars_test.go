package sequence_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/sequence"
)

func TestVarsCaseInsensitiveFirstSpelling(t *testing.T) {
	v := sequence.NewVars()
	if err := v.Set("OSDComputerName", "pc1"); err != nil {
		t.Fatal(err)
	}
	if err := v.Set("osdcomputername", "pc2"); err != nil {
		t.Fatal(err)
	}
	if got, ok := v.Get("OSDCOMPUTERNAME"); !ok || got != "pc2" {
		t.Errorf("Get = %q, %v; want pc2, true", got, ok)
	}
	if diff := cmp.Diff([]string{"OSDComputerName"}, v.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	if err := v.Delete("OSDcomputerNAME"); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Get("OSDComputerName"); ok {
		t.Error("variable still set after Delete")
	}
}

func TestVarsReadOnly(t *testing.T) {
	v := sequence.NewVars()
	for name, set := range map[string]func() error{
		"Set":       func() error { return v.Set("_SMSTSLogPath", "x") },
		"SetSecret": func() error { return v.SetSecret("_Token", "x") },
		"Delete":    func() error { return v.Delete("_CONTENT-Content") },
		"SetList":   func() error { return v.SetList("_Apps", []string{"a"}) },
	} {
		err := set()
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s on a _ name: err = %v, want a read-only error", name, err)
		}
	}
	v.SetInternal("_CONTENT-Content", "/cache/x")
	if got := v.Value("_content-content"); got != "/cache/x" {
		t.Errorf("SetInternal value = %q", got)
	}
	if err := v.Set("", "x"); err == nil {
		t.Error("Set with an empty name succeeded")
	}
	if err := v.Set("A%B", "x"); err == nil {
		t.Error("Set with % in the name succeeded")
	}
}

func TestVarsSecretsRedacted(t *testing.T) {
	v := sequence.NewVars()
	if err := v.SetSecret("AdminPassword", "hunter2"); err != nil {
		t.Fatal(err)
	}
	if err := v.SetSecret("Token", "hunter2-long"); err != nil {
		t.Fatal(err)
	}
	if err := v.Set("Plain", "visible"); err != nil {
		t.Fatal(err)
	}
	if !v.IsSecret("adminpassword") || v.IsSecret("Plain") || v.IsSecret("Nope") {
		t.Error("IsSecret is wrong")
	}
	// Setting a secret again without SetSecret keeps it secret.
	if err := v.Set("ADMINPASSWORD", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if !v.IsSecret("AdminPassword") {
		t.Error("re-set secret lost its secret flag")
	}
	got := v.Redact("pw=s3cret token=hunter2-long plain=visible")
	if want := "pw=******** token=******** plain=visible"; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if s := v.String(); strings.Contains(s, "s3cret") || strings.Contains(s, "hunter2") || !strings.Contains(s, "Plain=visible") {
		t.Errorf("String leaks a secret or drops a plain value:\n%s", s)
	}
	var b strings.Builder
	w := sequence.RedactingWriter(&b, v)
	if _, err := w.Write([]byte("using s3cret now\n")); err != nil {
		t.Fatal(err)
	}
	if b.String() != "using ******** now\n" {
		t.Errorf("RedactingWriter wrote %q", b.String())
	}
}

func TestVarsLists(t *testing.T) {
	v := sequence.NewVars()
	if err := v.SetList("Applications", []string{"a:1", "b:2", "c:3"}); err != nil {
		t.Fatal(err)
	}
	if got := v.Value("APPLICATIONS002"); got != "b:2" {
		t.Errorf("Applications002 = %q, want b:2", got)
	}
	if diff := cmp.Diff([]string{"a:1", "b:2", "c:3"}, v.List("applications")); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if err := v.SetList("Applications", []string{"z:9"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"z:9"}, v.List("Applications")); diff != "" {
		t.Errorf("List after shrinking (-want +got):\n%s", diff)
	}
	if _, ok := v.Get("Applications002"); ok {
		t.Error("Applications002 still set after shrinking the list")
	}
	// Items set one by one (as a script would) form a list too.
	if err := v.Set("Packages001", "p"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"p"}, v.List("Packages")); diff != "" {
		t.Errorf("List of Packages (-want +got):\n%s", diff)
	}
	if got := v.List("Missing"); got != nil {
		t.Errorf("List of unset = %v, want nil", got)
	}
}

func TestVarsExpand(t *testing.T) {
	v := sequence.VarsFrom(map[string]string{
		"Name":   "World",
		"Loop":   "%Name%",
		"Empty":  "",
		"_Under": "u",
	})
	tests := map[string]struct{ in, want string }{
		"plain":            {"no refs", "no refs"},
		"one":              {"Hello %Name%!", "Hello World!"},
		"case-insensitive": {"%NAME% %name%", "World World"},
		"unknown stays":    {"%Nope% and %Name%", "%Nope% and World"},
		"percent escape":   {"100%% sure", "100% sure"},
		"lone percent":     {"50% of %Name%", "50% of World"},
		"trailing percent": {"%Name%%", "World%"},
		"unterminated":     {"a %Name", "a %Name"},
		"no recursion":     {"%Loop%", "%Name%"},
		"empty value":      {"[%Empty%]", "[]"},
		"internal var":     {"%_Under%", "u"},
		"adjacent":         {"%Name%%Name%", "WorldWorld"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := v.Expand(tt.in); got != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestVarsSnapshotRestore(t *testing.T) {
	v := sequence.NewVars()
	if err := v.Set("B", "2"); err != nil {
		t.Fatal(err)
	}
	if err := v.SetSecret("a", "pw"); err != nil {
		t.Fatal(err)
	}
	v.SetInternal("_X", "x")
	snap := v.Snapshot()
	want := []sequence.Var{{Name: "_X", Value: "x"}, {Name: "a", Value: "pw", Secret: true}, {Name: "B", Value: "2"}}
	if diff := cmp.Diff(want, snap); diff != "" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}
	w := sequence.VarsFrom(map[string]string{"Other": "gone"})
	w.Restore(snap)
	if diff := cmp.Diff(want, w.Snapshot()); diff != "" {
		t.Errorf("restored (-want +got):\n%s", diff)
	}
	if !w.IsSecret("A") {
		t.Error("secret flag not restored")
	}
}
