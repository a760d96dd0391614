package stepdefs_test

import (
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

func TestTemplatesBuildConsistentSequences(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	want := []string{"windows-bare-metal", "windows-bare-metal-cloud", "windows-build-capture",
		"autopilot-cloud", "autopilot-preprovision", "chromeos-flex", "igel-12", "linux-bare-metal"}
	tmpls := stepdefs.Templates()
	if len(tmpls) != len(want) {
		t.Fatalf("%d templates, want %d", len(tmpls), len(want))
	}
	for i, tp := range tmpls {
		if tp.Slug != want[i] {
			t.Errorf("template %d slug %q, want %q", i, tp.Slug, want[i])
		}
		t.Run(tp.Slug, func(t *testing.T) {
			a, b := tp.Build(now), tp.Build(now)
			if a.ID == b.ID || a.Versions[0].ID == b.Versions[0].ID {
				t.Error("two builds share ids")
			}
			if a.Name != tp.Name || a.CreatedDate != now.Unix() {
				t.Errorf("name %q created %d", a.Name, a.CreatedDate)
			}
			if len(a.Versions) != 1 {
				t.Fatalf("%d versions", len(a.Versions))
			}
			v := a.Versions[0]
			if v.VersionNo != 1 || v.Status != deploy.StatusInDevelopment || v.TaskSequenceID != a.ID {
				t.Errorf("version %d %s of %s", v.VersionNo, v.Status, v.TaskSequenceID)
			}
			ids := map[string]bool{a.ID: true, v.ID: true}
			var check func(steps []deploy.Step, parent *string)
			check = func(steps []deploy.Step, parent *string) {
				for _, s := range steps {
					if ids[s.ID] {
						t.Errorf("id %s reused", s.ID)
					}
					ids[s.ID] = true
					if deploy.Str(s.GroupID) != deploy.Str(parent) {
						t.Errorf("step %q groupId %q, want %q", s.Name, deploy.Str(s.GroupID), deploy.Str(parent))
					}
					if (parent == nil) != (s.TaskSequenceVersionID != nil) || (parent == nil && *s.TaskSequenceVersionID != v.ID) {
						t.Errorf("step %q taskSequenceVersionId %v", s.Name, s.TaskSequenceVersionID)
					}
					if s.IsGroup {
						if s.TypeID != nil {
							t.Errorf("group %q has a typeId", s.Name)
						}
						id := s.ID
						check(s.GroupMembers, &id)
						continue
					}
					if _, ok := stepdefs.Builtin(deploy.Str(s.TypeID)); !ok {
						t.Errorf("step %q: type %s not built in", s.Name, deploy.Str(s.TypeID))
					}
				}
			}
			check(v.Steps, nil)
		})
	}
}

func TestLinuxTemplateShape(t *testing.T) {
	var ts *deploy.TaskSequence
	for _, tp := range stepdefs.Templates() {
		if tp.Slug == "linux-bare-metal" {
			ts = tp.Build(time.Unix(0, 0))
		}
	}
	if ts == nil {
		t.Fatal("no linux-bare-metal template")
	}
	g := ts.Versions[0].Steps[0]
	var got []string
	for _, s := range g.GroupMembers {
		got = append(got, deploy.Str(s.TypeID))
	}
	want := []string{stepdefs.TypeFormatDisk, stepdefs.TypeApplyOS, stepdefs.TypePrepareOS, stepdefs.TypeReboot}
	if len(got) != len(want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d type %s, want %s", i, got[i], want[i])
		}
	}
	if l := g.GroupMembers[0].Settings["Layout"]; l != "Linux" {
		t.Errorf("Format disk Layout = %q", l)
	}
	if f := g.GroupMembers[1].Settings["ImageFormat"]; f != "Raw" {
		t.Errorf("Apply OS ImageFormat = %q", f)
	}
	if _, ok := g.GroupMembers[1].ContentItems["Image"]; !ok {
		t.Error("Apply OS step lacks the Image content option")
	}
}
