package cli

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func TestWriteSteps(t *testing.T) {
	cond := func(s string) *string { return &s }
	steps := []deploy.Step{
		{Name: "Windows PE", IsGroup: true, Enabled: true,
			Condition: cond(`{"operator":"and","items":[{"field":"OSVERSION","operator":"equals","value":"WinPE"},{"operator":"or","items":[{"field":"A","operator":"exists"},{"field":"B","operator":"greaterThan","value":3}]}]}`),
			GroupMembers: []deploy.Step{
				{Name: "Format disk", Enabled: true},
				{Name: "Suspend BitLocker", Enabled: false, ContinueOnError: true, Condition: cond("get-thing -x\n | where y")},
				{Name: "Empty group", IsGroup: true, Enabled: true},
			}},
		{Name: "Broken", Enabled: true, Condition: cond(`{"operator":"and","items":[`)},
		{Name: "Reboot", Enabled: true, Condition: cond("")},
	}
	var b bytes.Buffer
	writeSteps(&b, steps, 1)
	want := `  Windows PE/  [if OSVERSION equals "WinPE" and (A exists or B greaterThan "3")]
    Format disk
    Suspend BitLocker  [disabled] [continue on error] [if powershell: get-thing -x | where y]
    Empty group/
  Broken  [if (invalid) {"operator":"and","items":[]
  Reboot
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}
