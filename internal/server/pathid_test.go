package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// The forms DeployR and Windows tools write an id in: all upper case, in
// braces, both. Each must name the record stored under the lowercase id.
func idForms(id string) []string {
	up := strings.ToUpper(id)
	return []string{up, "{" + up + "}", "{" + id + "}", "%20" + up + "%20"}
}

// path escapes an id form for a URL path (braces are not path
// characters); a form that already holds an escape is sent as it is.
func path(form string) string {
	if strings.Contains(form, "%") {
		return form
	}
	return url.PathEscape(form)
}

// TestIDsMatchInAnyCaseAndBraces drives the admin and machine routes with
// upper-case and braced forms of each kind of id and gets the one record;
// a malformed id is a 400 in the standard error shape.
func TestIDsMatchInAnyCaseAndBraces(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	item := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	upload(t, ts, item.ID, strings.NewReader("app bytes"), `{"installationCommandLine":"true"}`)

	const tsID = "5a5a5a5a-1b2c-4d3e-8f90-abcdefabcdef"
	doc := func(id, name string) string {
		return `{"id":"` + id + `","name":"` + name + `","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"` + id + `","versionNo":1,"status":"Active","steps":[
		 {"id":"s1","name":"Install app","isGroup":false,"typeId":"00000001-0000-0000-0000-00000000000B","settings":{},"contentItems":{"Application":"{` + strings.ToUpper(item.ID) + `}:1"},"enabled":true,"continueOnError":false,"condition":null}]}]}`
	}
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc(tsID, "Apps")), nil); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("import: %d %s", resp.StatusCode, b)
	}

	for _, f := range idForms(tsID) {
		var got deploy.TaskSequence
		if resp := ts.do(t, "GET", "/admin/v1/tasksequences/"+path(f), nil, &got); resp.StatusCode != 200 || got.ID != tsID {
			t.Errorf("GET task sequence %q: %d, id %q", f, resp.StatusCode, got.ID)
		}
		if resp := ts.do(t, "GET", "/admin/v1/tasksequences/"+path(f)+"/export", nil, nil); resp.StatusCode != 200 {
			t.Errorf("export task sequence %q: %d", f, resp.StatusCode)
		}
	}
	// A PUT under another case (body id in braces) replaces the one record.
	up := strings.ToUpper(tsID)
	if resp := ts.do(t, "PUT", "/admin/v1/tasksequences/"+up, strings.NewReader(doc("{"+up+"}", "Renamed")), nil); resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: %d %s", up, resp.StatusCode, b)
	}
	var all []deploy.TaskSequence
	ts.do(t, "GET", "/admin/v1/tasksequences", nil, &all)
	if len(all) != 1 || all[0].ID != tsID || all[0].Name != "Renamed" {
		t.Fatalf("after PUT: %+v, want the one record %s renamed", all, tsID)
	}

	for _, f := range idForms(item.ID) {
		var got deploy.ContentItem
		if resp := ts.do(t, "GET", "/admin/v1/content/"+path(f), nil, &got); resp.StatusCode != 200 || got.ID != item.ID {
			t.Errorf("GET content item %q: %d, id %q", f, resp.StatusCode, got.ID)
		}
		if resp := ts.do(t, "GET", "/admin/v1/content/"+path(f)+"/versions/1/data", nil, nil); resp.StatusCode != 200 {
			t.Errorf("GET content data %q: %d", f, resp.StatusCode)
		}
	}
	const def = "00000001-0000-0000-0000-00000000000b" // Install application: a built-in
	for _, f := range idForms(def) {
		var got deploy.StepDefinition
		if resp := ts.do(t, "GET", "/admin/v1/stepdefs/"+path(f), nil, &got); resp.StatusCode != 200 || got.ID != def {
			t.Errorf("GET step definition %q: %d, id %q", f, resp.StatusCode, got.ID)
		}
	}

	// A machine names its device, sequence and content in any case too.
	const dev = "4c4c4544-0042-3510-8052-b4c04f4e3332"
	var tok tokenAnswer
	ts.machine(t, "POST", "/v1/auth/token", "", map[string]any{
		"method": "passcode", "passcode": "Correct-Horse-Battery-42", "device": map[string]any{"uuid": strings.ToUpper(dev)}}, &tok)
	for _, f := range idForms(tsID) {
		if resp := ts.machine(t, "GET", "/v1/tasksequences/"+path(f)+"/versions/1", tok.Token, nil, nil); resp.StatusCode != 200 {
			t.Errorf("machine GET task sequence %q: %d", f, resp.StatusCode)
		}
	}
	var run deploy.Run
	if resp := ts.machine(t, "POST", "/v1/runs", tok.Token, map[string]any{"taskSequenceId": "{" + up + "}", "versionNo": 1}, &run); resp.StatusCode != 201 || run.TaskSequenceID != tsID {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("create run under {%s}: %d %s", up, resp.StatusCode, b)
	}
	for _, f := range idForms(item.ID) {
		r := ts.machine(t, "GET", "/v1/content/"+path(f)+"/1/data", tok.Token, nil, nil)
		if b, _ := io.ReadAll(r.Body); r.StatusCode != 200 || string(b) != "app bytes" {
			t.Errorf("machine GET content %q: %d %q", f, r.StatusCode, b)
		}
	}
	events := []map[string]any{{"type": "step-start", "stepId": "s1", "path": "Install app", "name": "Install app"}}
	if resp := ts.machine(t, "POST", "/v1/runs/"+strings.ToUpper(run.ID)+"/events", tok.Token, events, nil); resp.StatusCode != 204 {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("events under the upper-case run id: %d %s", resp.StatusCode, b)
	}
	for _, f := range idForms(run.ID) {
		var got deploy.Run
		if resp := ts.do(t, "GET", "/admin/v1/runs/"+path(f), nil, &got); resp.StatusCode != 200 || got.ID != run.ID || len(got.Steps) != 1 {
			t.Errorf("GET run %q: %d, %+v", f, resp.StatusCode, got)
		}
	}

	// The runs list filters by device and sequence written either way too.
	for _, q := range []string{
		"ts=" + url.QueryEscape("{"+up+"}"),
		"device=" + url.QueryEscape("{"+strings.ToUpper(dev)+"}"),
		"device=" + strings.ToUpper(dev) + "&ts=" + up,
	} {
		var runs []deploy.Run
		if resp := ts.do(t, "GET", "/admin/v1/runs?"+q, nil, &runs); resp.StatusCode != 200 || len(runs) != 1 || runs[0].ID != run.ID {
			t.Errorf("runs?%s: %d, %d runs, want the one run", q, resp.StatusCode, len(runs))
		}
	}

	// Devices: by UUID in any case or braces, by mac- key or bare MAC.
	for _, f := range idForms(dev) {
		var got struct {
			ID string `json:"id"`
		}
		if resp := ts.do(t, "GET", "/admin/v1/devices/"+path(f), nil, &got); resp.StatusCode != 200 || got.ID != dev {
			t.Errorf("GET device %q: %d, id %q", f, resp.StatusCode, got.ID)
		}
	}
	if resp := ts.adminJSON(t, "PUT", "/admin/v1/devices/"+path("{"+strings.ToUpper(dev)+"}")+"/nextboot", map[string]string{"nextBoot": "local"}, nil); resp.StatusCode != 200 {
		t.Errorf("next boot under braces: %d", resp.StatusCode)
	}
	var nb struct {
		NextBoot string `json:"nextBoot"`
	}
	if ts.do(t, "GET", "/admin/v1/devices/"+dev, nil, &nb); nb.NextBoot != "local" {
		t.Errorf("next boot set under braces reads %q under the stored id, want local", nb.NextBoot)
	}

	for _, c := range []struct{ method, path, msg string }{
		{"GET", "/admin/v1/tasksequences/nope", "not a GUID"},
		{"GET", "/admin/v1/tasksequences/" + tsID + "x", "not a GUID"},
		{"DELETE", "/admin/v1/tasksequences/" + path("{{"+tsID+"}}"), "not a GUID"},
		{"GET", "/admin/v1/content/" + item.ID + ":1", "not a GUID"},
		{"GET", "/admin/v1/stepdefs/nope", "not a GUID"},
		{"GET", "/admin/v1/runs/run-1", "not a GUID"},
		{"GET", "/admin/v1/devices/dev-1", "device id"},
		{"GET", "/admin/v1/runs?ts=nope", "not a GUID"},
		{"GET", "/admin/v1/runs?device=dev-1", "device id"},
		{"DELETE", "/admin/v1/sessions/nope", "not a GUID"},
	} {
		wantError(t, ts.do(t, c.method, c.path, nil, nil), 400, "invalid", c.msg)
	}
	wantError(t, ts.machine(t, "GET", "/v1/tasksequences/nope/versions/1", tok.Token, nil, nil), 400, "invalid", "not a GUID")

	// Deleting under another case removes the record itself.
	if resp := ts.do(t, "DELETE", "/admin/v1/tasksequences/"+path("{"+up+"}"), nil, nil); resp.StatusCode != 204 {
		t.Fatalf("DELETE {%s}: %d", up, resp.StatusCode)
	}
	wantError(t, ts.do(t, "GET", "/admin/v1/tasksequences/"+tsID, nil, nil), 404, "not_found", "")
	if resp := ts.do(t, "DELETE", "/admin/v1/content/"+strings.ToUpper(item.ID), nil, nil); resp.StatusCode != 204 {
		t.Fatalf("DELETE content %s: %d", strings.ToUpper(item.ID), resp.StatusCode)
	}
	wantError(t, ts.do(t, "GET", "/admin/v1/content/"+item.ID, nil, nil), 404, "not_found", "")

	// Revoking the machine's session under its id in upper case and
	// braces ends that session.
	var sessions []deploy.Session
	ts.do(t, "GET", "/admin/v1/sessions", nil, &sessions)
	if len(sessions) != 1 {
		t.Fatalf("sessions: %+v, want the machine's one", sessions)
	}
	if resp := ts.do(t, "DELETE", "/admin/v1/sessions/"+path("{"+strings.ToUpper(sessions[0].ID)+"}"), nil, nil); resp.StatusCode != 204 {
		t.Fatalf("revoke session {%s}: %d", strings.ToUpper(sessions[0].ID), resp.StatusCode)
	}
	if resp := ts.machine(t, "GET", "/v1/tasksequences/"+tsID+"/versions/1", tok.Token, nil, nil); resp.StatusCode != 401 {
		t.Errorf("machine call after its session was revoked: %d, want 401", resp.StatusCode)
	}
}

// TestImportResolvesMixedCaseReferences: a sequence whose references to a
// step definition, its version, a content item and a child sequence are
// written in upper case and braces imports with every one resolved, and is
// stored with them in canonical form.
func TestImportResolvesMixedCaseReferences(t *testing.T) {
	ts := startServer(t, t.TempDir())
	b, err := os.ReadFile(filepath.Join(compatDir(t), "stepdefinitions", "sample-82fc6fd9.json"))
	if err != nil {
		t.Fatal(err)
	}
	if resp := ts.do(t, "POST", "/admin/v1/stepdefs/import", strings.NewReader(string(b)), nil); resp.StatusCode != 201 {
		t.Fatalf("import step definition: %d", resp.StatusCode)
	}
	const (
		def    = "82fc6fd9-4112-4c49-bf94-7139220276cd" // Sample, in the corpus
		defVer = "81b1283c-fb52-4f9a-8c79-e7906b1ba4c2"
		child  = "c0c0c0c0-aaaa-4bbb-8ccc-dddddddddddd"
		parent = "a0a0a0a0-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	)
	item := createItem(t, ts, deploy.ContentFile, deploy.PurposeOther)
	if _, resp := upload(t, ts, item.ID, strings.NewReader("data"), ""); resp.StatusCode != 201 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	childDoc := `{"id":"` + strings.ToUpper(child) + `","name":"Child","architecture":"Any","versions":[{"id":"V1","taskSequenceId":"` + strings.ToUpper(child) + `","versionNo":1,"status":"Active","steps":[]}]}`
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(childDoc), nil); resp.StatusCode != 201 {
		t.Fatalf("import child: %d", resp.StatusCode)
	}
	brace := func(s string) string { return "{" + strings.ToUpper(s) + "}" }
	doc := fmt.Sprintf(`{"id":%q,"name":"Parent","architecture":"Any","versions":[{"id":"V1","taskSequenceId":%q,"versionNo":1,"status":"Active","steps":[
	 {"id":"Custom","name":"Sample","isGroup":false,"typeId":%q,"stepDefinitionVersionId":%q,"settings":{"text":"Keep THIS"},"contentItems":{"content":"%s:1"},"enabled":true,"continueOnError":false,"condition":null},
	 {"id":"Kid","name":"Child","isGroup":false,"typeId":"00000001-0000-0000-0000-00000000000D","settings":{"childTaskSequenceId":"%s:1"},"contentItems":{},"enabled":true,"continueOnError":false,"condition":null}]}]}`,
		brace(parent), strings.ToUpper(parent), brace(def), brace(defVer), brace(item.ID), brace(child))
	var res struct {
		TaskSequence deploy.TaskSequence `json:"taskSequence"`
		Warnings     []deploy.FieldError `json:"warnings"`
	}
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), &res); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("import: %d %s", resp.StatusCode, b)
	}
	for _, w := range res.Warnings {
		if strings.Contains(w.Message, "not on this server") {
			t.Errorf("reference not resolved: %s", w)
		}
	}
	var got deploy.TaskSequence
	if resp := ts.do(t, "GET", "/admin/v1/tasksequences/"+parent, nil, &got); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", parent, resp.StatusCode)
	}
	v := got.Versions[0]
	s0, s1 := v.Steps[0], v.Steps[1]
	for what, pair := range map[string][2]string{
		"version id":              {v.ID, "v1"},
		"version taskSequenceId":  {v.TaskSequenceID, parent},
		"typeId":                  {deploy.Str(s0.TypeID), def},
		"stepDefinitionVersionId": {deploy.Str(s0.StepDefinitionVersionID), defVer},
		"content reference":       {s0.ContentItems["content"], item.ID + ":1"},
		"free text setting":       {s0.Settings["text"], "Keep THIS"},
		"child typeId":            {deploy.Str(s1.TypeID), deploy.TypeRunTaskSequence},
		"childTaskSequenceId":     {s1.Settings["childTaskSequenceId"], child + ":1"},
	} {
		if pair[0] != pair[1] {
			t.Errorf("stored %s = %q, want %q", what, pair[0], pair[1])
		}
	}
	// The child, imported with an upper-case id, is stored under the canonical one.
	if resp := ts.do(t, "GET", "/admin/v1/tasksequences/"+child, nil, nil); resp.StatusCode != 200 {
		t.Errorf("child under its canonical id: %d", resp.StatusCode)
	}
}

// TestLegacyStoredIDsStillMatch: a sequence stored before ids were
// normalised on entry (here written straight to the store, as an older
// import left it) may hold a typeId and a target in braces and upper case;
// the machine API still recognises its Capture image step and lets the
// machine capture into that target, named in any case.
func TestLegacyStoredIDsStillMatch(t *testing.T) {
	ts := startAuthServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	target := createItem(t, ts, deploy.ContentFile, deploy.PurposeOperatingSystem)
	const id = "61111111-2222-3333-4444-555555555555"
	typeID := "{" + strings.ToUpper(stepdefs.TypeCaptureImage) + "}"
	err := ts.Store().PutTaskSequence(context.Background(), &deploy.TaskSequence{ID: id, Name: "Old capture", Architecture: "Any",
		Versions: []deploy.TSVersion{{ID: "v", TaskSequenceID: id, VersionNo: 1, Status: deploy.StatusActive, Steps: []deploy.Step{{
			ID: "S1", Name: "Capture", TypeID: &typeID, Enabled: true,
			Settings: map[string]string{"TargetContentItem": " {" + strings.ToUpper(target.ID) + "} "}, ContentItems: map[string]string{},
		}}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-legacy")
	if resp := ts.machine(t, "GET", "/v1/tasksequences/"+id+"/versions/1", tok, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("machine GET the legacy sequence: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", ts.apiURL("/v1/content/"+strings.ToUpper(target.ID)+"/versions"), strings.NewReader("captured disk bytes"))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := ts.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 201 {
		t.Fatalf("capture into the legacy step's target: %d %s", resp.StatusCode, b)
	}
}

// TestPatchedDependenciesStoredCanonical: installationDependencies set by
// PATCH enter like those of an upload or an import, in canonical form.
func TestPatchedDependenciesStoredCanonical(t *testing.T) {
	ts := startServer(t, t.TempDir())
	app := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	dep := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	for _, id := range []string{app.ID, dep.ID} {
		if _, resp := upload(t, ts, id, strings.NewReader("bytes of "+id), ""); resp.StatusCode != 201 {
			t.Fatalf("upload: %d", resp.StatusCode)
		}
	}
	var v deploy.ContentVersion
	body := `{"installationDependencies":["{` + strings.ToUpper(dep.ID) + `}:1"]}`
	if resp := ts.do(t, "PATCH", "/admin/v1/content/"+strings.ToUpper(app.ID)+"/versions/1", strings.NewReader(body), &v); resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PATCH: %d %s", resp.StatusCode, b)
	}
	var got deploy.ContentVersion
	ts.do(t, "GET", "/admin/v1/content/"+app.ID+"/versions/1", nil, &got)
	if len(got.InstallationDependencies) != 1 || got.InstallationDependencies[0] != dep.ID+":1" {
		t.Errorf("stored dependencies %q, want [%s:1]", got.InstallationDependencies, dep.ID)
	}
}
