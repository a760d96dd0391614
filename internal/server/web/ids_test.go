package web_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// TestConsoleReadsLegacyStoredIDs: a sequence stored before ids were
// normalised on entry (written straight to the store, as an older import
// left it) holds a typeId, a step id and a content reference in braces or
// upper case. The editor still finds the step's definition, selects the
// step named in another case and shows the stored image as the chosen
// one; the content page still names the sequence as a user of the item.
func TestConsoleReadsLegacyStoredIDs(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	osItem := e.contentItem(t, "Legacy OS", deploy.PurposeOperatingSystem, deploy.StatusActive)
	const id = "7e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a70"
	typeID := "{" + strings.ToUpper(stepdefs.TypeApplyOS) + "}"
	err := e.srv.Store().PutTaskSequence(context.Background(), &deploy.TaskSequence{ID: id, Name: "Legacy lab", Architecture: "Any",
		Versions: []deploy.TSVersion{{ID: "v1", TaskSequenceID: id, VersionNo: 1, Status: deploy.StatusInDevelopment, Steps: []deploy.Step{{
			ID: "Step-Apply", Name: "Apply operating system", TypeID: &typeID, Enabled: true,
			Settings:     map[string]string{"ImageFormat": "Raw"},
			ContentItems: map[string]string{"Image": "{" + strings.ToUpper(osItem.ID) + "}:1"},
		}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ops := e.browser(t)
	ops.mustLogin("ops")

	_, page := ops.do("GET", "/ts/"+id+"/versions/1/edit?step="+url.QueryEscape("{step-apply}"), nil, nil)
	if !regexp.MustCompile(`<li class="node[^"]* selected[^"]*" id="step-Step-Apply"`).MatchString(page) {
		t.Error("the step named {step-apply} in the query is not selected")
	}
	field := optionBlock(t, page, "Image")
	if !strings.Contains(field, `value="`+osItem.ID+`:1" selected`) || strings.Contains(field, "not offered here") {
		t.Errorf("the stored image reference is not the chosen offer:\n%s", field)
	}

	_, page = ops.do("GET", "/content", nil, nil)
	if !strings.Contains(page, "Legacy lab v1") {
		t.Error("the content page does not name the sequence that uses the item")
	}
}
