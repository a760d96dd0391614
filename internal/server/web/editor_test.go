package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

const (
	edTS  = "0e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a70"
	edVer = "1e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a70"
	edA   = "2e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a70" // group A
	edS1  = "3e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a70"
	edS2  = "4e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a70"
	edS3  = "5e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a70"
	edB   = "6e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a70" // group B
)

func setVarStep(id, name, group string) string {
	g := "null"
	tv := `"` + edVer + `"`
	if group != "" {
		g, tv = `"`+group+`"`, "null"
	}
	return fmt.Sprintf(`{"id":%q,"taskSequenceVersionId":%s,"name":%q,"groupId":%s,"typeId":%q,"enabled":true,"settings":{"VariableName":"X","VariableValue":"1"}}`,
		id, tv, name, g, stepdefs.TypeSetVariable)
}

// editorTS is In_Development: group A [S1, S2], S3, group B [].
func editorTS(status string) string {
	return `{"id":"` + edTS + `","name":"Editor lab","architecture":"Any","versions":[{"id":"` + edVer + `","taskSequenceId":"` + edTS +
		`","versionNo":1,"status":"` + status + `","steps":[` +
		`{"id":"` + edA + `","taskSequenceVersionId":"` + edVer + `","name":"A","isGroup":true,"enabled":true,"groupMembers":[` +
		setVarStep(edS1, "S1", edA) + `,` + setVarStep(edS2, "S2", edA) + `]},` +
		setVarStep(edS3, "S3", "") + `,` +
		`{"id":"` + edB + `","taskSequenceVersionId":"` + edVer + `","name":"B","isGroup":true,"enabled":true,"groupMembers":[]}]}]}`
}

func (e *env) importTS(t *testing.T, doc string) {
	t.Helper()
	if _, _, err := e.admin.ImportTaskSequence(context.Background(), strings.NewReader(doc), client.ImportNew); err != nil {
		t.Fatalf("import: %v", err)
	}
}

func (e *env) stored(t *testing.T, id string, no int) *deploy.TSVersion {
	t.Helper()
	ts, err := e.srv.Store().TaskSequence(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := ts.Version(no)
	if !ok {
		t.Fatalf("no version %d", no)
	}
	return v
}

// shape renders a step tree as "A[S2 S1] S3 B[]", with "-" after a
// disabled step and "!" after one that continues on error.
func shape(steps []deploy.Step) string {
	var parts []string
	for _, s := range steps {
		p := s.Name
		if !s.Enabled {
			p += "-"
		}
		if s.ContinueOnError {
			p += "!"
		}
		if s.IsGroup {
			p += "[" + shape(s.GroupMembers) + "]"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

var revRE = regexp.MustCompile(`name="rev" value="([^"]+)"`)

// edit posts one editor action for step with the page's current revision.
func (b *browser) edit(id string, no int, form url.Values) (*http.Response, string) {
	b.t.Helper()
	path := fmt.Sprintf("/ts/%s/versions/%d/edit", id, no)
	_, page := b.do("GET", path, nil, nil)
	if form.Get("csrf") == "" {
		form.Set("csrf", b.csrf)
	}
	// A version that is not edited in place has no revision on its page.
	if m := revRE.FindStringSubmatch(page); m != nil && form.Get("rev") == "" {
		form.Set("rev", m[1])
	}
	return b.do("POST", path, form, nil)
}

func TestEditorTreeActions(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.importTS(t, editorTS("In_Development"))
	ops := e.browser(t)
	ops.mustLogin("ops")
	steps := []struct {
		form url.Values
		want string
	}{
		{url.Values{"step": {edS2}, "do": {"up"}}, "A[S2 S1] S3 B[]"},
		{url.Values{"step": {edS1}, "do": {"out"}}, "A[S2] S1 S3 B[]"},
		{url.Values{"step": {edS3}, "do": {"down"}}, "A[S2] S1 B[] S3"},
		{url.Values{"step": {edS3}, "do": {"in"}}, "A[S2] S1 B[S3]"},
		{url.Values{"step": {edS1}, "do": {"disable"}}, "A[S2] S1- B[S3]"},
		{url.Values{"step": {edS1}, "do": {"coe-on"}}, "A[S2] S1-! B[S3]"},
		{url.Values{"step": {edS1}, "do": {"enable"}}, "A[S2] S1! B[S3]"},
		{url.Values{"step": {edA}, "do": {"disable"}}, "A-[S2] S1! B[S3]"},
		{url.Values{"step": {edB}, "do": {"add"}, "type": {"group"}, "name": {"C"}, "where": {"inside"}}, "A-[S2] S1! B[S3 C[]]"},
		{url.Values{"step": {edS1}, "do": {"add"}, "type": {stepdefs.TypeRunCommandLine}, "where": {"after"}}, "A-[S2] S1! Run command line B[S3 C[]]"},
		{url.Values{"step": {edA}, "do": {"remove"}}, "S1! Run command line B[S3 C[]]"},
		{url.Values{"step": {edS1}, "do": {"coe-off"}}, "S1 Run command line B[S3 C[]]"},
		{url.Values{"do": {"add"}, "type": {"group"}, "where": {"end"}}, "S1 Run command line B[S3 C[]] New group[]"},
		{url.Values{"step": {edS3}, "do": {"save"}, "name": {"S3 renamed"}, "flags": {"1"}, "coe": {"1"}}, "S1 Run command line B[S3 renamed-! C[]] New group[]"},
		{url.Values{"step": {edS3}, "do": {"save"}, "name": {"S3"}, "flags": {"1"}, "enabled": {"1"}}, "S1 Run command line B[S3 C[]] New group[]"},
		{url.Values{"step": {edB}, "do": {"remove"}}, "S1 Run command line New group[]"},
	}
	var v *deploy.TSVersion // the tree after removing A: S1! Run command line B[S3 C[]]
	for i, s := range steps {
		resp, body := ops.edit(edTS, 1, s.form)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%v: %d, want 303:\n%s", s.form, resp.StatusCode, body)
		}
		if got := shape(e.stored(t, edTS, 1).Steps); got != s.want {
			t.Fatalf("after %s %s: tree %q, want %q", s.form.Get("do"), s.form.Get("step"), got, s.want)
		}
		if i == 10 {
			v = e.stored(t, edTS, 1)
		}
	}
	// Moved steps carry the links DeployR writes: groupId of their group,
	// taskSequenceVersionId only at the top level.
	s3 := v.Steps[2].GroupMembers[0]
	if deploy.Str(s3.GroupID) != edB || s3.TaskSequenceVersionID != nil {
		t.Errorf("S3 moved into B: groupId %q, taskSequenceVersionId %v", deploy.Str(s3.GroupID), s3.TaskSequenceVersionID)
	}
	if s1 := v.Steps[0]; s1.GroupID != nil || deploy.Str(s1.TaskSequenceVersionID) != edVer {
		t.Errorf("S1 moved to the top: groupId %v, taskSequenceVersionId %q", s1.GroupID, deploy.Str(s1.TaskSequenceVersionID))
	}
	// A new step has every option of its definition at its default.
	added := v.Steps[1]
	if deploy.Str(added.TypeID) != stepdefs.TypeRunCommandLine || added.Settings["SuccessCodes"] != "0" || added.Settings["Timeout"] != "60" {
		t.Errorf("added step: type %s settings %v", deploy.Str(added.TypeID), added.Settings)
	}
	if _, ok := added.ContentItems["Content"]; !ok {
		t.Errorf("added step lacks its content option: %v", added.ContentItems)
	}
	// The added step lacks its required command line: the editor shows
	// that on the step.
	_, page := ops.do("GET", "/ts/"+edTS+"/versions/1/edit?step="+added.ID, nil, nil)
	if !stepHas(t, page, added.ID, "CommandLine") {
		t.Errorf("the editor does not show the missing command line on the new step")
	}
	// Impossible moves are refused with the reason, and change nothing.
	for _, f := range []url.Values{{"step": {v.Steps[0].ID}, "do": {"up"}}, {"step": {v.Steps[0].ID}, "do": {"out"}}, {"step": {v.Steps[0].ID}, "do": {"in"}}} {
		if resp, body := ops.edit(edTS, 1, f); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "S1") {
			t.Errorf("%s on the first top-level step: %d, want 400 naming it", f.Get("do"), resp.StatusCode)
		}
	}
	// An edit made on a stale page is refused.
	if resp, _ := ops.do("POST", "/ts/"+edTS+"/versions/1/edit", url.Values{"csrf": {ops.csrf}, "rev": {"stale"}, "step": {edS1}, "do": {"disable"}}, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("edit with a stale revision: %d, want 409", resp.StatusCode)
	}
	if got := shape(e.stored(t, edTS, 1).Steps); got != "S1 Run command line New group[]" {
		t.Errorf("refused edits changed the tree: %q", got)
	}
	// Every save is the admin API's PUT, audited under the account.
	events, err := e.srv.Store().AuditEvents(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	puts := 0
	for _, ev := range events {
		if ev.Actor == "console:ops" && ev.Action == "admin.request" && ev.Details["method"] == "PUT" && ev.Outcome == "success" {
			puts++
		}
	}
	if puts != len(steps) {
		t.Errorf("audit log has %d successful PUTs by console:ops, want %d", puts, len(steps))
	}
}

// stepHas reports whether the tree node of step id shows a problem
// mentioning what.
func stepHas(t *testing.T, page, id, what string) bool {
	t.Helper()
	i := strings.Index(page, `id="step-`+id+`"`)
	if i < 0 {
		t.Fatalf("no tree node for step %s", id)
	}
	node := page[i:]
	if j := strings.Index(node[1:], `<li class="node`); j >= 0 {
		node = node[:j+1]
	}
	return strings.Contains(node, `<ul class="problems">`) && strings.Contains(node, what)
}

func TestEditorRefusals(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.addUser(t, "eve", "viewer")
	e.importTS(t, editorTS("In_Development"))
	viewer := e.browser(t)
	viewer.mustLogin("eve")
	if resp, body := viewer.do("GET", "/ts/"+edTS+"/versions/1/edit?step="+edS1, nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `id="step-form"`) {
		t.Fatalf("viewer opening the editor: %d", resp.StatusCode)
	}
	if resp, body := viewer.edit(edTS, 1, url.Values{"step": {edS1}, "do": {"remove"}}); resp.StatusCode != 403 || !strings.Contains(body, "role viewer may not do this") {
		t.Errorf("viewer removing a step: %d, want 403", resp.StatusCode)
	}
	ops := e.browser(t)
	ops.mustLogin("ops")
	if resp, _ := ops.edit(edTS, 1, url.Values{"csrf": {"wrong"}, "step": {edS1}, "do": {"remove"}}); resp.StatusCode != 403 {
		t.Errorf("edit with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := ops.do("POST", "/ts/"+edTS+"/versions/1/edit", url.Values{"step": {edS1}, "do": {"remove"}}, nil); resp.StatusCode != 403 {
		t.Errorf("edit without a CSRF token: %d, want 403", resp.StatusCode)
	}
	if got := shape(e.stored(t, edTS, 1).Steps); got != "A[S1 S2] S3 B[]" {
		t.Errorf("refused edits changed the tree: %q", got)
	}
}

// TestEditorActiveVersion: an Active version is not edited in place; a
// new In_Development version copied from it is.
func TestEditorActiveVersion(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.importTS(t, editorTS("Active"))
	ops := e.browser(t)
	ops.mustLogin("ops")
	if resp, _ := ops.edit(edTS, 1, url.Values{"step": {edS1}, "do": {"remove"}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("editing an Active version: %d, want 409", resp.StatusCode)
	}
	resp, _ := ops.do("POST", "/ts/"+edTS+"/versions/1/edit", url.Values{"csrf": {ops.csrf}, "do": {"copy"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ts/"+edTS+"/versions/2/edit") {
		t.Fatalf("new version from Active: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	v2 := e.stored(t, edTS, 2)
	if v2.Status != deploy.StatusInDevelopment || shape(v2.Steps) != "A[S1 S2] S3 B[]" || v2.ID == edVer || deploy.Str(v2.Steps[0].TaskSequenceVersionID) != v2.ID {
		t.Fatalf("version 2: %s %q id %s, top step's version %s", v2.Status, shape(v2.Steps), v2.ID, deploy.Str(v2.Steps[0].TaskSequenceVersionID))
	}
	if resp, _ := ops.edit(edTS, 2, url.Values{"step": {edS1}, "do": {"remove"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("editing the new version: %d", resp.StatusCode)
	}
	if shape(e.stored(t, edTS, 1).Steps) != "A[S1 S2] S3 B[]" || shape(e.stored(t, edTS, 2).Steps) != "A[S2] S3 B[]" {
		t.Errorf("versions after editing version 2: %q and %q", shape(e.stored(t, edTS, 1).Steps), shape(e.stored(t, edTS, 2).Steps))
	}
}

// TestEditorBadValueShownOnStep: a value failing the option's regex is
// refused by the server's validation, shown on that step and option, and
// the typed value stays in the form.
func TestEditorBadValueShownOnStep(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.importTS(t, editorTS("In_Development"))
	ops := e.browser(t)
	ops.mustLogin("ops")
	resp, body := ops.edit(edTS, 1, url.Values{"step": {edS2}, "do": {"save"}, "opt:VariableName": {"1 bad name"}, "opt:VariableValue": {"kept"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad variable name: %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(body, `id="not-saved"`) {
		t.Error("the page does not say the edit was not saved")
	}
	if !stepHas(t, body, edS2, "variable names start with a letter") {
		t.Error("the regex's message is not shown on the step")
	}
	if stepHas(t, body, edS1, "variable names") {
		t.Error("the error is shown on another step too")
	}
	field := optionBlock(t, body, "VariableName")
	if !strings.Contains(field, `value="1 bad name"`) || !strings.Contains(field, "field-error") {
		t.Errorf("the option's field lacks the typed value or its error:\n%s", field)
	}
	if !strings.Contains(optionBlock(t, body, "VariableValue"), `value="kept"`) {
		t.Error("the other typed value was lost")
	}
	v := e.stored(t, edTS, 1)
	if got := v.Steps[0].GroupMembers[1].Settings["VariableName"]; got != "X" {
		t.Errorf("the refused value was stored: %q", got)
	}
	// The form resubmitted with a good value saves.
	if resp, _ := ops.edit(edTS, 1, url.Values{"step": {edS2}, "do": {"save"}, "opt:VariableName": {"Good_Name"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("good variable name: %d", resp.StatusCode)
	}
	if got := e.stored(t, edTS, 1).Steps[0].GroupMembers[1].Settings; got["VariableName"] != "Good_Name" || got["VariableValue"] != "1" {
		t.Errorf("settings after the save: %v", got)
	}
}

// optionBlock is the form block of option name.
func optionBlock(t *testing.T, page, name string) string {
	t.Helper()
	i := strings.Index(page, `data-option="`+name+`"`)
	if i < 0 {
		t.Fatalf("no form field for option %s", name)
	}
	block := page[i:]
	if j := strings.Index(block, "</div>"); j >= 0 {
		block = block[:j]
	}
	return block
}

// TestEditorDepthLimit: nesting groups in the editor stops at the
// import's depth limit, with the reason, and the stored sequence keeps
// the deepest nesting that was allowed.
func TestEditorDepthLimit(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.importTS(t, editorTS("In_Development"))
	ops := e.browser(t)
	ops.mustLogin("ops")
	parent := edB
	depth := 1
	for ; depth < 60; depth++ {
		resp, body := ops.edit(edTS, 1, url.Values{"step": {parent}, "do": {"add"}, "type": {"group"}, "where": {"inside"}, "name": {fmt.Sprint("G", depth)}})
		if resp.StatusCode == http.StatusBadRequest {
			if !strings.Contains(body, "nests deeper than") {
				t.Fatalf("refused nesting without the depth reason:\n%s", body)
			}
			break
		}
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("nest group %d: %d\n%s", depth, resp.StatusCode, body)
		}
		g := e.stored(t, edTS, 1).Steps[2]
		for g.GroupMembers != nil && len(g.GroupMembers) > 0 {
			g = g.GroupMembers[0]
		}
		parent = g.ID
	}
	if depth >= 60 || depth < 20 {
		t.Fatalf("nesting stopped at %d groups, want the import's limit (about 29)", depth)
	}
	t.Logf("group %d inside B was refused (the import's 64 levels of JSON)", depth)
}

// formValues is what a browser submits for the form with id: inputs,
// textareas and selected options (not the buttons).
func formValues(t *testing.T, page, id string) url.Values {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	attr := func(n *html.Node, k string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val, true
			}
		}
		return "", false
	}
	var form *html.Node
	var findForm func(*html.Node)
	findForm = func(n *html.Node) {
		if v, _ := attr(n, "id"); n.Type == html.ElementNode && n.Data == "form" && v == id {
			form = n
		}
		for c := n.FirstChild; c != nil && form == nil; c = c.NextSibling {
			findForm(c)
		}
	}
	findForm(doc)
	if form == nil {
		t.Fatalf("no form %s in the page", id)
	}
	vals := url.Values{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			name, _ := attr(n, "name")
			switch n.Data {
			case "input":
				typ, _ := attr(n, "type")
				val, _ := attr(n, "value")
				_, checked := attr(n, "checked")
				if name != "" && ((typ != "checkbox" && typ != "radio") || checked) {
					if (typ == "checkbox" || typ == "radio") && val == "" {
						val = "on"
					}
					vals.Add(name, val)
				}
			case "textarea":
				var b strings.Builder
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					b.WriteString(c.Data)
				}
				// Browsers send a textarea's line breaks as CRLF.
				vals.Add(name, strings.ReplaceAll(strings.ReplaceAll(b.String(), "\r\n", "\n"), "\n", "\r\n"))
			case "select":
				_, multi := attr(n, "multiple")
				var first string
				picked := false
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Type != html.ElementNode || c.Data != "option" {
						continue
					}
					v, _ := attr(c, "value")
					if first == "" && !picked {
						first = v
					}
					if _, sel := attr(c, "selected"); sel {
						vals.Add(name, v)
						picked = true
					}
				}
				if !picked && !multi {
					vals.Add(name, first)
				}
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(form)
	return vals
}

// TestEditorRoundTrip: a DeployR export edited in the console exports as
// the same bytes but for the one value changed (and the sequence's
// lastModifiedDate, which every save sets). The whole form is sent back
// as a browser would, CRLF line breaks in the scripts included.
func TestEditorRoundTrip(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	in, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "compat", "deployr", "tasksequences", "module-os-configuration-b09560a1.json"))
	if err != nil {
		t.Fatalf("the DeployR corpus (../shared/compat/deployr): %v", err)
	}
	e.importTS(t, string(in))
	const id = "b09560a1-ae6d-48c2-b3d1-5177ee89a53f"
	v := e.stored(t, id, 1)
	bob, hyperv := v.Steps[0], v.Steps[1]
	if bob.Name != "Create Local Admin Bob" || deploy.Str(hyperv.Condition) == "" {
		t.Fatalf("corpus file changed: %s, %q", bob.Name, deploy.Str(hyperv.Condition))
	}
	ops := e.browser(t)
	ops.mustLogin("ops")
	save := func(step string, change func(url.Values)) {
		t.Helper()
		_, page := ops.do("GET", "/ts/"+id+"/versions/1/edit?step="+step, nil, nil)
		form := formValues(t, page, "step-form")
		if form.Get("opt:Script") == "" || form.Get("cond.kind") == "" {
			t.Fatalf("the step form lacks the script or the condition: %v", form)
		}
		change(form)
		form.Set("do", "save")
		if resp, body := ops.do("POST", "/ts/"+id+"/versions/1/edit", form, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("save %s: %d\n%s", step, resp.StatusCode, body)
		}
	}
	// Saving a step with a condition (the builder) and a CRLF script,
	// changing nothing, changes nothing.
	save(hyperv.ID, func(url.Values) {})
	save(v.Steps[2].ID, func(url.Values) {}) // its script starts with line breaks
	save(bob.ID, func(f url.Values) { f.Set("opt:Timeout", "30") })

	var out bytes.Buffer
	if err := e.admin.ExportTaskSequence(context.Background(), id, &out); err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := string(in)
	i := strings.Index(want, `"Timeout":"15"`)
	want = want[:i] + `"Timeout":"30"` + want[i+len(`"Timeout":"15"`):]
	last := `"lastModifiedDate":1760035027`
	j := strings.LastIndex(want, last)
	want = want[:j] + `"lastModifiedDate":` + string(got["lastModifiedDate"]) + want[j+len(last):]
	if out.String() != want {
		a, b := out.String(), want
		k := 0
		for k < len(a) && k < len(b) && a[k] == b[k] {
			k++
		}
		t.Fatalf("export differs from the file with the one change at byte %d:\nexport: …%s…\nwant:   …%s…", k, snippet(a, k), snippet(b, k))
	}
}

func snippet(s string, at int) string {
	lo, hi := max(at-80, 0), min(at+80, len(s))
	return s[lo:hi]
}

// TestEditorConditionBuilder builds a nested query in the form: builder
// actions change only the page until Save; Save stores DeployR's JSON; the
// form shows a stored query again and sends it back unchanged.
func TestEditorConditionBuilder(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	const step = "7e1d2c3b-4a59-4687-9a1b-2c3d4e5f6a70"
	e.importTS(t, `{"id":"`+edTS+`","name":"Conditions","architecture":"Any","versions":[{"id":"`+edVer+`","taskSequenceId":"`+edTS+
		`","versionNo":1,"status":"In_Development","steps":[{"id":"`+step+`","name":"PS","typeId":"`+deploy.TypeRunPowerShell+
		`","enabled":true,"settings":{"Script":"line1\nline2"},"condition":null}]}]}`)
	ops := e.browser(t)
	ops.mustLogin("ops")
	path := "/ts/" + edTS + "/versions/1/edit"
	_, page := ops.do("GET", path+"?step="+step, nil, nil)
	form := formValues(t, page, "step-form")
	if form.Get("cond.kind") != "none" || form.Get("q.n.r") != "0" {
		t.Fatalf("a step without a condition: kind %q, %q comparisons", form.Get("cond.kind"), form.Get("q.n.r"))
	}
	// Add a comparison, then a nested group: the page shows them, the
	// store is unchanged.
	for _, do := range []string{"cond-add:r", "cond-group:r"} {
		form.Set("do", do)
		resp, body := ops.do("POST", path, form, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="pending"`) {
			t.Fatalf("%s: %d, want 200 with the unsaved note", do, resp.StatusCode)
		}
		form = formValues(t, body, "step-form")
	}
	if form.Get("q.n.r") != "2" || form.Get("q.kind.r.1") != "g" || form.Get("q.n.r.1") != "1" || form.Get("cond.kind") != "query" {
		t.Fatalf("builder after adding a comparison and a group: %v", form)
	}
	if c := e.stored(t, edTS, 1).Steps[0].Condition; c != nil {
		t.Fatalf("a builder action saved the condition: %q", *c)
	}
	// An empty variable is refused on the step.
	form.Set("do", "save")
	resp, body := ops.do("POST", path, form, nil)
	if resp.StatusCode != http.StatusBadRequest || !stepHas(t, body, step, "empty field") {
		t.Fatalf("saving a comparison without a variable: %d, want 400 with the error on the step", resp.StatusCode)
	}
	if again := formValues(t, body, "step-form"); again.Get("cond.kind") != "query" || again.Get("q.n.r") != "2" || again.Get("q.kind.r.1") != "g" {
		t.Fatalf("the refused condition is not shown again in the builder: %v", again)
	}
	form.Set("q.f.r.0", "OSVERSION")
	form.Set("q.o.r.0", "notEquals")
	form.Set("q.v.r.0", "WinPE")
	form.Set("q.join.r.1", "or")
	form.Set("q.f.r.1.0", "Make")
	form.Set("q.v.r.1.0", "Dell & <Co>")
	if resp, body := ops.do("POST", path, form, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save the condition: %d\n%s", resp.StatusCode, body)
	}
	st := e.stored(t, edTS, 1).Steps[0]
	want := `{"operator":"and","items":[{"field":"OSVERSION","operator":"notEquals","value":"WinPE"},{"operator":"or","items":[{"field":"Make","operator":"equals","value":"Dell & <Co>"}]}]}`
	if got := deploy.Str(st.Condition); got != want {
		t.Fatalf("stored condition\n%s\nwant\n%s", got, want)
	}
	if st.Settings["Script"] != "line1\nline2" {
		t.Errorf("the unchanged script came back as %q (the browser's CRLF stored)", st.Settings["Script"])
	}
	// The tree reads it; the form round-trips it; removing the group
	// leaves one comparison.
	_, page = ops.do("GET", path+"?step="+step, nil, nil)
	if !strings.Contains(page, `if OSVERSION notEquals &#34;WinPE&#34; and Make equals &#34;Dell &amp; &lt;Co&gt;&#34;`) {
		t.Errorf("the tree does not show the condition readably")
	}
	form = formValues(t, page, "step-form")
	if form.Get("q.f.r.1.0") != "Make" || form.Get("q.o.r.0") != "notEquals" || form.Get("q.join.r.1") != "or" {
		t.Fatalf("the stored query is not in the builder: %v", form)
	}
	form.Set("do", "cond-del:r.1")
	_, body = ops.do("POST", path, form, nil)
	form = formValues(t, body, "step-form")
	form.Set("do", "save")
	if resp, _ := ops.do("POST", path, form, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save after removing the group: %d", resp.StatusCode)
	}
	if got := deploy.Str(e.stored(t, edTS, 1).Steps[0].Condition); got != `{"operator":"and","items":[{"field":"OSVERSION","operator":"notEquals","value":"WinPE"}]}` {
		t.Errorf("condition after removing the group: %s", got)
	}
	// A PowerShell condition, then none at all.
	fresh := func() url.Values {
		_, page := ops.do("GET", path+"?step="+step, nil, nil)
		f := formValues(t, page, "step-form")
		f.Set("do", "save")
		return f
	}
	form = fresh()
	form.Set("cond.kind", "powershell")
	form.Set("cond.ps", "$true")
	if resp, _ := ops.do("POST", path, form, nil); resp.StatusCode != http.StatusSeeOther || deploy.Str(e.stored(t, edTS, 1).Steps[0].Condition) != "$true" {
		t.Errorf("PowerShell condition: %d, stored %q", resp.StatusCode, deploy.Str(e.stored(t, edTS, 1).Steps[0].Condition))
	}
	form = fresh()
	form.Set("cond.kind", "none")
	if resp, _ := ops.do("POST", path, form, nil); resp.StatusCode != http.StatusSeeOther || deploy.Str(e.stored(t, edTS, 1).Steps[0].Condition) != "" {
		t.Errorf("no condition: %d, stored %q", resp.StatusCode, deploy.Str(e.stored(t, edTS, 1).Steps[0].Condition))
	}
	// A forged form cannot build a huge or deep tree.
	form = fresh()
	form.Set("cond.kind", "query")
	form.Set("q.n.r", "100000")
	if resp, _ := ops.do("POST", path, form, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("100000 comparisons: %d, want 400", resp.StatusCode)
	}
}

// contentItem creates an item with one version per status.
func (e *env) contentItem(t *testing.T, name string, p deploy.Purpose, statuses ...deploy.Status) *deploy.ContentItem {
	t.Helper()
	ctx := context.Background()
	it, err := e.admin.CreateContentItem(ctx, deploy.ContentItem{Name: name, Type: deploy.ContentFile, Purpose: p})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range statuses {
		if _, err := e.admin.AddContentVersion(ctx, it.ID, deploy.ContentVersion{Status: st}, strings.NewReader(name+string(st)), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	return it
}

// TestEditorContentPicker: Apply operating system's Image offers the
// operating-system items' versions (not other purposes, not deprecated
// versions); a forged pick of another purpose is refused on the step.
func TestEditorContentPicker(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	osItem := e.contentItem(t, "Ubuntu raw", deploy.PurposeOperatingSystem, deploy.StatusActive, deploy.StatusDeprecated, deploy.StatusInDevelopment)
	tools := e.contentItem(t, "Tools", deploy.PurposeOther, deploy.StatusActive)
	ops := e.browser(t)
	ops.mustLogin("ops")
	if resp, _ := ops.do("POST", "/ts/new", url.Values{"csrf": {ops.csrf}, "template": {"linux-bare-metal"}, "name": {"Linux lab"}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("new from template: %d", resp.StatusCode)
	}
	all, err := e.srv.Store().TaskSequences(context.Background())
	if err != nil || len(all) != 1 {
		t.Fatalf("sequences: %v %v", all, err)
	}
	ts := all[0]
	apply := ts.Versions[0].Steps[0].GroupMembers[1]
	if apply.Name != "Apply operating system" {
		t.Fatalf("template changed: %s", apply.Name)
	}
	path := "/ts/" + ts.ID + "/versions/1/edit"
	_, page := ops.do("GET", path+"?step="+apply.ID, nil, nil)
	if !stepHas(t, page, apply.ID, "Image") {
		t.Error("the empty required image is not shown on the step")
	}
	field := optionBlock(t, page, "Image")
	for _, want := range []string{`value="` + osItem.ID + `:1"`, `value="` + osItem.ID + `:3"`, "Ubuntu raw v3 (In_Development)"} {
		if !strings.Contains(field, want) {
			t.Errorf("the image picker lacks %s:\n%s", want, field)
		}
	}
	for _, bad := range []string{osItem.ID + `:2"`, tools.ID} {
		if strings.Contains(field, bad) {
			t.Errorf("the image picker offers %s (deprecated or another purpose):\n%s", bad, field)
		}
	}
	form := formValues(t, page, "step-form")
	form.Set("do", "save")
	form.Set("opt:Image", tools.ID+":1")
	resp, body := ops.do("POST", path, form, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(optionBlock(t, body, "Image"), "needs OperatingSystem") {
		t.Fatalf("picking Other content for the image: %d, want 400 with the purpose error on the option", resp.StatusCode)
	}
	form.Set("opt:Image", osItem.ID+":1")
	if resp, body := ops.do("POST", path, form, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("picking the image: %d\n%s", resp.StatusCode, body)
	}
	got := e.stored(t, ts.ID, 1).Steps[0].GroupMembers[1]
	if got.ContentItems["Image"] != osItem.ID+":1" || got.Settings["ImageFormat"] != "Raw" {
		t.Errorf("Apply operating system after the save: content %v, settings %v", got.ContentItems, got.Settings)
	}
}

// TestEditorPassword: a Password option is never sent to the browser; an
// empty field keeps it, "clear" empties it.
func TestEditorPassword(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	e.importTS(t, editorTS("In_Development"))
	ops := e.browser(t)
	ops.mustLogin("ops")
	if resp, _ := ops.edit(edTS, 1, url.Values{"step": {edS3}, "do": {"add"}, "type": {stepdefs.TypeEnableAdministrator}, "where": {"after"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add Enable Administrator account: %d", resp.StatusCode)
	}
	id := e.stored(t, edTS, 1).Steps[2].ID
	const secret = "Tidal-Lantern-Quartz-9"
	password := func() string { return e.stored(t, edTS, 1).Steps[2].Settings["AdminPassword"] }
	save := func(change func(url.Values)) string {
		t.Helper()
		_, page := ops.do("GET", "/ts/"+edTS+"/versions/1/edit?step="+id, nil, nil)
		if strings.Contains(page, secret) {
			t.Fatal("the editor page carries the password")
		}
		f := formValues(t, page, "step-form")
		f.Set("do", "save")
		change(f)
		if resp, body := ops.do("POST", "/ts/"+edTS+"/versions/1/edit", f, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("save: %d\n%s", resp.StatusCode, body)
		}
		return page
	}
	save(func(f url.Values) { f.Set("opt:AdminPassword", secret) })
	if password() != secret {
		t.Fatalf("password after setting it: %q", password())
	}
	page := save(func(url.Values) {})
	if password() != secret {
		t.Fatalf("an empty password field changed the password to %q", password())
	}
	if !strings.Contains(optionBlock(t, page, "AdminPassword"), "leave empty to keep it") {
		t.Error("the form does not say the password is set")
	}
	save(func(f url.Values) { f.Set("clear:AdminPassword", "1") })
	if password() != "" {
		t.Errorf("password after clearing it: %q", password())
	}
}

// TestStatusKeepsBytes: setting a version's status re-saves the whole
// sequence; values holding &, < or > keep DeployR's bytes (a plain
// json.Marshal would write them as \u0026 and so on).
func TestStatusKeepsBytes(t *testing.T) {
	e := start(t)
	e.addUser(t, "ops", "operator")
	in, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "compat", "deployr", "tasksequences", "windows-bare-metal-from-cloud-github-8770d276.json"))
	if err != nil {
		t.Fatalf("the DeployR corpus (../shared/compat/deployr): %v", err)
	}
	if !bytes.Contains(in, []byte("&os=win32")) {
		t.Fatal("corpus file changed: no & in a script")
	}
	e.importTS(t, string(in))
	const id = "8770d276-96ee-4c2b-b8c4-38d4ad54670c"
	ops := e.browser(t)
	ops.mustLogin("ops")
	if resp, body := ops.do("POST", "/ts/"+id+"/versions/1/status", url.Values{"csrf": {ops.csrf}, "status": {"Deprecated"}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set status: %d\n%s", resp.StatusCode, body)
	}
	var out bytes.Buffer
	if err := e.admin.ExportTaskSequence(context.Background(), id, &out); err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(in), `"versionNo":1,"status":"Active"`, `"versionNo":1,"status":"Deprecated"`, 1)
	var src map[string]json.RawMessage
	json.Unmarshal(in, &src)
	last := `"lastModifiedDate":` + string(src["lastModifiedDate"])
	j := strings.LastIndex(want, last)
	want = want[:j] + `"lastModifiedDate":` + string(got["lastModifiedDate"]) + want[j+len(last):]
	if out.String() != want {
		a, b := out.String(), want
		k := 0
		for k < len(a) && k < len(b) && a[k] == b[k] {
			k++
		}
		t.Fatalf("export differs from the file with the status changed at byte %d:\nexport: …%s…\nwant:   …%s…", k, snippet(a, k), snippet(b, k))
	}
}
