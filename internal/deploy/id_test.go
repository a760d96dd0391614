package deploy_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

const guid = "8770d276-96ee-4c2b-b8c4-38d4ad54670c"

func TestParseID(t *testing.T) {
	tests := map[string]struct {
		in, want string // want "" = KindInvalid
	}{
		"canonical":            {guid, guid},
		"upper case":           {"8770D276-96EE-4C2B-B8C4-38D4AD54670C", guid},
		"braces":               {"{8770d276-96ee-4c2b-b8c4-38d4ad54670c}", guid},
		"upper in braces":      {"{8770D276-96EE-4C2B-B8C4-38D4AD54670C}", guid},
		"space around":         {"  " + guid + "\t", guid},
		"space inside braces":  {"{ " + guid + " }", guid},
		"empty":                {"", ""},
		"not hex":              {"8770d276-96ee-4c2b-b8c4-38d4ad54670g", ""},
		"no dashes":            {"8770d27696ee4c2bb8c438d4ad54670c", ""},
		"dash misplaced":       {"8770d2-7696ee-4c2b-b8c4-38d4ad54670c", ""},
		"one brace":            {"{" + guid, ""},
		"two pairs of braces":  {"{{" + guid + "}}", ""},
		"path traversal":       {"../" + guid, ""},
		"ref not an id":        {guid + ":1", ""},
		"escape after":         {guid + "\x1b[2J", ""},
		"word":                 {"nope", ""},
		"built-in step typeId": {"00000001-0000-0000-0000-00000000000D", "00000001-0000-0000-0000-00000000000d"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := deploy.ParseID("task sequence", tt.in)
			if tt.want == "" {
				if deploy.ErrorKind(err) != deploy.KindInvalid {
					t.Fatalf("ParseID(%q) = %q, %v; want KindInvalid", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if again, err := deploy.ParseID("task sequence", got); err != nil || again != got {
				t.Errorf("not idempotent: ParseID(%q) = %q, %v", got, again, err)
			}
		})
	}
}

func TestCanonicalIDKeepsNonGUIDs(t *testing.T) {
	for in, want := range map[string]string{
		"V1":           "v1",
		" {Step-A} ":   "step-a",
		"":             "",
		"{":            "{",
		"{UPPER}":      "upper",
		"Mixed Case 2": "mixed case 2",
	} {
		if got := deploy.CanonicalID(in); got != want {
			t.Errorf("CanonicalID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSameID(t *testing.T) {
	tests := map[string]struct {
		a, b string
		want bool
	}{
		"equal":                  {guid, guid, true},
		"upper case":             {"8770D276-96EE-4C2B-B8C4-38D4AD54670C", guid, true},
		"braces and space":       {" {8770D276-96EE-4C2B-B8C4-38D4AD54670C} ", guid, true},
		"built-in typeId":        {"00000001-0000-0000-0000-00000000000B", "00000001-0000-0000-0000-00000000000b", true},
		"step ids, not GUIDs":    {"Step-1", "step-1", true},
		"other id":               {guid, "8770d276-96ee-4c2b-b8c4-38d4ad54670d", false},
		"reference is not an id": {guid + ":1", guid, false},
		"empty and an id":        {"", guid, false},
	}
	for name, tt := range tests {
		if got := deploy.SameID(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: SameID(%q, %q) = %v, want %v", name, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestCanonicalRef(t *testing.T) {
	for in, want := range map[string]string{
		"{8770D276-96EE-4C2B-B8C4-38D4AD54670C}:2": guid + ":2",
		"8770D276-96EE-4C2B-B8C4-38D4AD54670C":     guid,
		guid + ": 3":                               guid + ":3",
		"":                                         "",
		"Not-A-Guid:1":                             "Not-A-Guid:1", // kept: not a reference to canonicalise
		"Some Text":                                "Some Text",
	} {
		if got := deploy.CanonicalRef(in); got != want {
			t.Errorf("CanonicalRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDeviceID(t *testing.T) {
	const u = "4c4c4544-0042-3010-8052-b4c04f4e4432"
	tests := map[string]struct {
		in, want string // want "" = KindInvalid
	}{
		"uuid":               {u, u},
		"uuid upper, braces": {"{4C4C4544-0042-3010-8052-B4C04F4E4432}", u},
		"uuid bare hex":      {"4C4C454400423010" + "8052B4C04F4E4432", u},
		"mac key":            {"mac-52-54-00-ab-cd-ef", "mac-52-54-00-ab-cd-ef"},
		"mac key upper":      {"MAC-52-54-00-AB-CD-EF", "mac-52-54-00-ab-cd-ef"},
		"bare mac":           {"52:54:00:AB:CD:EF", "mac-52-54-00-ab-cd-ef"},
		"mac with dashes":    {"52-54-00-ab-cd-ef", "mac-52-54-00-ab-cd-ef"},
		"empty":              {"", ""},
		"word":               {"dev-1", ""},
		"mac- and garbage":   {"mac-zz", ""},
		"long mac (EUI-64)":  {"mac-02-00-5e-10-00-00-00-01", ""},
		"uuid and escape":    {u + "\x1b", ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := deploy.ParseDeviceID(tt.in)
			if tt.want == "" {
				if deploy.ErrorKind(err) != deploy.KindInvalid {
					t.Fatalf("ParseDeviceID(%q) = %q, %v; want KindInvalid", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDeviceID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseRefCanonical(t *testing.T) {
	got, err := deploy.ParseRef(" {8770D276-96EE-4C2B-B8C4-38D4AD54670C}:2")
	if err != nil || got != (deploy.Ref{ID: guid, VersionNo: 2}) {
		t.Fatalf("ParseRef = %v, %v", got, err)
	}
}

func TestTaskSequenceNormalizeIDs(t *testing.T) {
	const (
		ver   = "0b226848-2b30-4863-ab1c-c8bbd66e1c42"
		child = "b09560a1-ae6d-48c2-b3d1-5177ee89a53f"
		item  = "d819ff51-72a1-4e3c-bdf3-fcb69cf1bbab"
		def   = "7e12116e-6c80-4e28-abef-1b9219b8a3e0"
		defV  = "ce8e43c9-27a9-431a-a25b-eae716ac601a"
	)
	up := func(s string) *string { u := "{" + upper(s) + "}"; return &u }
	in := deploy.TaskSequence{ID: upper(guid), Versions: []deploy.TSVersion{{
		ID: upper(ver), TaskSequenceID: "{" + guid + "}", VersionNo: 1,
		Steps: []deploy.Step{{
			ID: "Group-A", TaskSequenceVersionID: up(ver), IsGroup: true,
			GroupMembers: []deploy.Step{{
				ID: "Step-1", GroupID: deploy.StrPtr("Group-A"), TypeID: deploy.StrPtr("00000001-0000-0000-0000-00000000000D"),
				Settings: map[string]string{"ChildTaskSequenceID": upper(child) + ":1", "ScriptName": "Keep-Me.ps1",
					"targetContentItem": "{" + upper(item) + "}", "Other": upper(item)},
				ContentItems: map[string]string{"Scripts": upper(item) + ":3", "Unset": ""},
			}, {
				ID: "Step-2", TypeID: up(def), StepDefinitionVersionID: up(defV),
			}},
		}},
	}}}
	want := deploy.TaskSequence{ID: guid, Versions: []deploy.TSVersion{{
		ID: ver, TaskSequenceID: guid, VersionNo: 1,
		Steps: []deploy.Step{{
			ID: "group-a", TaskSequenceVersionID: deploy.StrPtr(ver), IsGroup: true,
			GroupMembers: []deploy.Step{{
				ID: "step-1", GroupID: deploy.StrPtr("group-a"), TypeID: deploy.StrPtr("00000001-0000-0000-0000-00000000000d"),
				Settings: map[string]string{"ChildTaskSequenceID": child + ":1", "ScriptName": "Keep-Me.ps1",
					"targetContentItem": item, "Other": upper(item)},
				ContentItems: map[string]string{"Scripts": item + ":3", "Unset": ""},
			}, {
				ID: "step-2", TypeID: deploy.StrPtr(def), StepDefinitionVersionID: deploy.StrPtr(defV),
			}},
		}},
	}}}
	if err := in.NormalizeIDs(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("NormalizeIDs (-want +got):\n%s", diff)
	}

	bad := deploy.TaskSequence{ID: "not-a-guid"}
	if err := bad.NormalizeIDs(); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("id not a GUID: %v, want KindInvalid", err)
	}
	empty := deploy.TaskSequence{Versions: []deploy.TSVersion{{ID: "V1"}}}
	if err := empty.NormalizeIDs(); err != nil || empty.ID != "" || empty.Versions[0].ID != "v1" {
		t.Errorf("empty id: %v, %+v; want it left for the caller to assign", err, empty)
	}
}

func TestContentAndStepDefNormalizeIDs(t *testing.T) {
	const dep = "d819ff51-72a1-4e3c-bdf3-fcb69cf1bbab"
	c := deploy.ContentItem{ID: "{" + upper(guid) + "}", Versions: []deploy.ContentVersion{{
		ID: upper(dep), ContentItemID: upper(guid), InstallationDependencies: []string{upper(dep) + ":2"},
	}}}
	if err := c.NormalizeIDs(); err != nil {
		t.Fatal(err)
	}
	wantC := deploy.ContentItem{ID: guid, Versions: []deploy.ContentVersion{{
		ID: dep, ContentItemID: guid, InstallationDependencies: []string{dep + ":2"},
	}}}
	if diff := cmp.Diff(wantC, c); diff != "" {
		t.Errorf("content item (-want +got):\n%s", diff)
	}

	d := deploy.StepDefinition{ID: upper(guid), Versions: []deploy.StepDefVersion{{ID: "{" + upper(dep) + "}", StepDefinitionID: upper(guid)}}}
	if err := d.NormalizeIDs(); err != nil {
		t.Fatal(err)
	}
	wantD := deploy.StepDefinition{ID: guid, Versions: []deploy.StepDefVersion{{ID: dep, StepDefinitionID: guid}}}
	if diff := cmp.Diff(wantD, d); diff != "" {
		t.Errorf("step definition (-want +got):\n%s", diff)
	}

	for name, err := range map[string]error{
		"content item":    (&deploy.ContentItem{ID: "x"}).NormalizeIDs(),
		"step definition": (&deploy.StepDefinition{ID: "{x}"}).NormalizeIDs(),
	} {
		if deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("%s with id not a GUID: %v, want KindInvalid", name, err)
		}
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
