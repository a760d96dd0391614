package validate_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence/validate"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// TestWindowsTemplatesCannotRun pins what validation says cannot run in
// each Windows template as built (no content chosen). The steps Imprint
// implements natively — Format disk, Apply operating system, Inject
// drivers, Prepare operating system, Reboot, Set variable, Run server-side
// script — are not listed although their definitions point at DeployR's
// built-in script content (the agent does not need it); DeployR's
// script-only steps are, with the reason.
func TestWindowsTemplatesCannotRun(t *testing.T) {
	script := func(name string) string {
		return `"` + name + `" runs DeployR's own script from DeployR's built-in content, which Imprint does not ship, and Imprint's agent has no implementation of it yet`
	}
	image := "required content option Image is empty"
	configure, updates := script("Configure operating system"), script("Install updates")
	cloudOS, cloudDrivers := script("Apply operating system from cloud"), script("Inject drivers from cloud")
	want := map[string][]deploy.FieldError{
		"windows-bare-metal": {
			{Step: "Windows PE/Apply operating system", Message: image},
			{Step: "Full OS/Configure new OS", Message: configure},
			{Step: "Full OS/Enable BranchCache", Message: script("Enable BranchCache")},
			{Step: "Full OS/Install updates", Message: updates},
		},
		"windows-bare-metal-cloud": {
			{Step: "Windows PE/Apply OS from Cloud", Message: cloudOS},
			{Step: "Windows PE/Inject cloud drivers", Message: cloudDrivers},
			{Step: "Full OS/Configure new OS", Message: configure},
			{Step: "Full OS/Enable BranchCache", Message: script("Enable BranchCache")},
			{Step: "Full OS/Install updates", Message: updates},
		},
		"windows-build-capture": {
			{Step: "Windows PE/Apply operating system", Message: image},
			{Step: "Full OS/Configure new OS", Message: configure},
			{Step: "Full OS/Install updates", Message: updates},
			{Step: "Full OS/Prepare for capture", Message: `the agent has no implementation of "Prepare for capture" (no built-in step and no script to run)`},
		},
		"autopilot-cloud": {
			{Step: "Windows PE/Apply OS from Cloud", Message: cloudOS},
			{Step: "Windows PE/Inject cloud drivers", Message: cloudDrivers},
			{Step: "Full OS/Configure new OS", Message: configure},
			{Step: "Full OS/Install updates", Message: updates},
		},
		"autopilot-preprovision": {
			{Step: "Windows PE/Apply OS from Cloud", Message: cloudOS},
			{Step: "Windows PE/Inject cloud drivers", Message: cloudDrivers},
			{Step: "Full OS/Configure new OS", Message: configure},
			{Step: "Full OS/Install updates", Message: updates},
		},
		// The Linux templates, for contrast: only the image to choose.
		"linux-bare-metal": {{Step: "Linux/Apply operating system", Message: image}},
		"chromeos-flex":    {{Step: "Linux/Apply ChromeOS Flex", Message: image}},
		"igel-12":          {{Step: "Linux/Apply IGEL image", Message: image}},
	}
	seen := 0
	for _, tp := range stepdefs.Templates() {
		t.Run(tp.Slug, func(t *testing.T) {
			w, ok := want[tp.Slug]
			if !ok {
				t.Fatalf("template %s has no expectation here: add what cannot run in it", tp.Slug)
			}
			seen++
			res, err := validate.TaskSequence(context.Background(), tp.Build(time.Unix(1760000000, 0)), newResolver())
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(w, res.CannotRun); d != "" {
				t.Errorf("cannot run (-want +got):\n%s", d)
			}
		})
	}
	if seen != len(want) {
		t.Errorf("%d templates checked, %d expected", seen, len(want))
	}
}
