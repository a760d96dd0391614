package sequence_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

// TestRequiredOptionCheckedAtRunTime: a required option DeployR exported
// as "" is accepted until its step is about to run; it fails then only if
// it is still empty after expansion. "[]" is an empty content list.
func TestRequiredOptionCheckedAtRunTime(t *testing.T) {
	h := newHarness(t, nil)
	h.e.Fetcher = &fetcher{}
	h.e.Options = func(s *deploy.Step) []deploy.Option {
		return []deploy.Option{
			{Name: "Owner", Type: deploy.OptionText, Required: true, DefaultValue: deploy.StrPtr("")},
			{Name: "Extras", Type: deploy.OptionContentList, DefaultValue: deploy.StrPtr("[]")},
		}
	}
	vars := sequence.VarsFrom(map[string]string{"Who": "ops"})
	ts := tsv("ts", 1, steps(
		st("filled", set2("owner", "%Who%"), content("Extras", "[]"), coe()),
		st("empty", set2("Owner", ""), content("Extras", "[]"), coe()),
		st("unset-var", set2("Owner", "%Nobody%x"), coe()),
		st("blank-after-expansion", set2("Owner", " %Blank%"), coe()),
	))
	vars.SetInternal("Blank", "")
	h.run(t, ts, vars)
	want := []string{"filled=succeeded", "empty=ignored", "unset-var=succeeded", "blank-after-expansion=ignored"}
	if d := cmp.Diff(want, h.outcomes()); d != "" {
		t.Errorf("outcomes (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"filled", "unset-var"}, h.rec.Calls()); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	for _, ev := range h.events {
		if ev.ID == "empty" && ev.Type == sequence.EventEnd && !strings.Contains(ev.Message, `required option "Owner" is empty`) {
			t.Errorf("empty: message %q", ev.Message)
		}
	}
}
