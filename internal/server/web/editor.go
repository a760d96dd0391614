package web

// The task-sequence editor: one version's tree of steps and groups, each
// change a form posted to the server, saved through the admin API's PUT
// (validated and audited under console:NAME like `imprint ts import`).
// Only In_Development versions are edited; an Active or Deprecated one is
// what machines run or ran, so a change to it starts as a new
// In_Development version copied from it.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/deployrjson"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// editorView is what templates/editor.html gets.
type editorView struct {
	TS       *deploy.TaskSequence
	Version  *deploy.TSVersion
	Editable bool
	Ctx      *nodeCtx
	Nodes    []*stepNode
	Selected *stepNode
	Form     *stepForm
	Problems []deploy.FieldError // not tied to a step
	StepDefs []choice
	// NotSaved is set when the page shows an edit the server refused (or
	// one not saved yet): the tree and form hold the edit, the store
	// does not.
	NotSaved string
	Pending  bool // the page holds unsaved condition-builder changes
}

// nodeCtx is what every node's forms need.
type nodeCtx struct {
	Action, CSRF, Rev, Selected string
	Editable                    bool
}

// stepNode is one step or group of the tree as drawn.
type stepNode struct {
	Ctx              *nodeCtx
	Step             *deploy.Step
	Path             string
	TypeName         string
	Cond             string
	Errors, Warnings []deploy.FieldError // the server's validation
	Children         []*stepNode
	First, Last      bool
	CanIndent        bool // the previous sibling is a group to move into
	InGroup          bool
	Selected         bool
}

// version loads the task sequence and the version the path names.
func (c *Console) version(r *http.Request) (*deploy.TaskSequence, *deploy.TSVersion, error) {
	no, err := strconv.Atoi(r.PathValue("no"))
	if err != nil {
		return nil, nil, deploy.Errorf(deploy.KindInvalid, "version %q is not a number", r.PathValue("no"))
	}
	id, err := pathID(r, "task sequence")
	if err != nil {
		return nil, nil, err
	}
	ts, err := c.d.Store.TaskSequence(r.Context(), id)
	if err != nil {
		return nil, nil, err
	}
	v, ok := ts.Version(no)
	if !ok {
		return nil, nil, deploy.Errorf(deploy.KindNotFound, "task sequence %s has no version %d", ts.Name, no)
	}
	return ts, v, nil
}

// revision identifies a version's stored content: an edit posted against
// another revision was made on a stale page and is refused.
func revision(v *deploy.TSVersion) string {
	b, _ := deploy.EncodeJSON(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

func editPath(ts *deploy.TaskSequence, v *deploy.TSVersion) string {
	return "/ts/" + url.PathEscape(ts.ID) + "/versions/" + strconv.Itoa(v.VersionNo) + "/edit"
}

func (c *Console) editPage(w http.ResponseWriter, r *http.Request) {
	ts, v, err := c.version(r)
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	ev, err := c.editorData(r, ts, v, r.URL.Query().Get("step"), nil)
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	c.render(w, r, "editor", sessionOf(r), "Edit "+ts.Name, ev)
}

// editorData builds the page for version v of ts (possibly holding an
// unsaved edit) with the server's validation of it. form, when not nil,
// is the step form as posted (kept when it is shown again).
func (c *Console) editorData(r *http.Request, ts *deploy.TaskSequence, v *deploy.TSVersion, selected string, cf *condForm) (*editorView, error) {
	ctx := r.Context()
	stored, err := c.d.Store.TaskSequence(ctx, ts.ID)
	if err != nil {
		return nil, err
	}
	rev := ""
	if sv, ok := stored.Version(v.VersionNo); ok {
		rev = revision(sv)
	}
	s := sessionOf(r)
	ev := &editorView{TS: ts, Version: v, Editable: v.Status == deploy.StatusInDevelopment,
		Ctx: &nodeCtx{Action: editPath(ts, v), CSRF: s.csrf, Rev: rev, Selected: selected}}
	ev.Ctx.Editable = ev.Editable
	one := *ts
	one.Versions = []deploy.TSVersion{*v}
	res, err := c.d.Validate(ctx, &one)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	byStep := map[string]*[2][]deploy.FieldError{}
	for i, list := range [][]deploy.FieldError{res.Errors, res.Warnings} {
		for _, f := range list {
			if f.Step == "" {
				if i == 0 || f.Field != "status" { // the status warning is the page's own note
					ev.Problems = append(ev.Problems, f)
				}
				continue
			}
			p := byStep[f.Step]
			if p == nil {
				p = &[2][]deploy.FieldError{}
				byStep[f.Step] = p
			}
			p[i] = append(p[i], f)
		}
	}
	defs := c.defFinder(r)
	ev.Nodes = stepTree(v, func(n *stepNode) {
		st := n.Step
		n.Ctx, n.Selected = ev.Ctx, deploy.SameID(st.ID, selected)
		if cond, err := sequence.ParseCondition(deploy.Str(st.Condition)); err == nil {
			n.Cond = cond.String()
		} else {
			n.Cond = "(unreadable condition)"
		}
		if p := byStep[n.Path]; p != nil {
			n.Errors, n.Warnings = p[0], p[1]
		}
		if st.IsGroup {
			n.TypeName = "Group"
		} else if d, _ := defs(deploy.Str(st.TypeID)); d != nil {
			n.TypeName = d.Name
		} else {
			n.TypeName = "unknown step type " + deploy.Str(st.TypeID)
		}
		if n.Selected {
			ev.Selected = n
		}
	})
	if ev.Selected != nil {
		f, err := c.stepForm(r, ev.Selected, defs, cf)
		if err != nil {
			return nil, err
		}
		ev.Form = f
	}
	ev.StepDefs = append(ev.StepDefs, choice{Value: "group", Label: "Group"})
	all, err := c.allStepDefs(r)
	if err != nil {
		return nil, err
	}
	for _, d := range all {
		label := d.Name
		if tn := deploy.Str(d.TypeName); tn != "" {
			label = tn + ": " + d.Name
		}
		ev.StepDefs = append(ev.StepDefs, choice{Value: d.ID, Label: label})
	}
	return ev, nil
}

// stepTree is the tree as drawn, built from deploy.Steps: each node
// under the node of its group, with its path and its place among its
// siblings set; fill sets the rest.
func stepTree(v *deploy.TSVersion, fill func(*stepNode)) []*stepNode {
	var top []*stepNode
	// open[d] is the node of the group whose members are at depth d+1.
	var open []*stepNode
	for at := range deploy.Steps(v.Steps) {
		i, steps := at.Index, *siblings(v, at)
		n := &stepNode{Step: at.Step, Path: at.Path, First: i == 0, Last: i == len(steps)-1,
			CanIndent: i > 0 && steps[i-1].IsGroup, InGroup: at.Parent != nil}
		fill(n)
		if at.Depth == 0 {
			top = append(top, n)
		} else {
			open[at.Depth-1].Children = append(open[at.Depth-1].Children, n)
		}
		open = append(open[:at.Depth], n)
	}
	return top
}

// siblings is the slice of v that holds the step at at.
func siblings(v *deploy.TSVersion, at deploy.StepAt) *[]deploy.Step {
	if at.Parent == nil {
		return &v.Steps
	}
	return &at.Parent.Step.GroupMembers
}

// allStepDefs is every step definition a step can be made of: the
// built-ins, then the imported ones.
func (c *Console) allStepDefs(r *http.Request) ([]*deploy.StepDefinition, error) {
	custom, err := c.d.Store.StepDefinitions(r.Context())
	if err != nil {
		return nil, err
	}
	slices.SortFunc(custom, func(a, b *deploy.StepDefinition) int { return strings.Compare(a.Name, b.Name) })
	return append(stepdefs.Builtins(), custom...), nil
}

// defFinder looks step definitions up (built-ins first, then the store),
// once each per request; a definition not on this server is nil.
func (c *Console) defFinder(r *http.Request) func(id string) (*deploy.StepDefinition, error) {
	seen := map[string]*deploy.StepDefinition{}
	return func(id string) (*deploy.StepDefinition, error) {
		key := deploy.CanonicalID(id) // a typeId as the document holds it
		if d, ok := seen[key]; ok {
			return d, nil
		}
		d, ok := stepdefs.Builtin(key)
		if !ok && key != "" {
			var err error
			d, err = c.d.Store.StepDefinition(r.Context(), key)
			if deploy.IsNotFound(err) {
				d, err = nil, nil
			}
			if err != nil {
				return nil, err
			}
		}
		seen[key] = d
		return d, nil
	}
}

// editPost applies one edit to the version and saves the task sequence.
func (c *Console) editPost(w http.ResponseWriter, r *http.Request) {
	ts, v, err := c.version(r)
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	do := r.PostFormValue("do")
	if do == "copy" {
		c.copyVersion(w, r, ts, v)
		return
	}
	if v.Status != deploy.StatusInDevelopment {
		c.fail(w, r, http.StatusConflict, fmt.Errorf("%s version %d is %s, so it is not edited in place (machines run it as it is); create a new version from it first", ts.Name, v.VersionNo, v.Status))
		return
	}
	if rev := r.PostFormValue("rev"); rev != revision(v) {
		c.fail(w, r, http.StatusConflict, fmt.Errorf("%s version %d changed since this page was opened; open the editor again and repeat the change", ts.Name, v.VersionNo))
		return
	}
	sel := r.PostFormValue("step")
	var msg string
	var cf *condForm // the condition as posted, shown again if the save is refused
	switch {
	case do == "add":
		sel, msg, err = c.addStep(r, v)
	case do == "save" || strings.HasPrefix(do, "cond-"):
		var pending bool
		pending, cf, err = c.applyStepForm(r, v, sel, do)
		if err != nil {
			c.fail(w, r, statusOf(err), err)
			return
		}
		if pending { // a condition-builder change: shown, saved with Save
			c.showEdit(w, r, http.StatusOK, ts, v, sel, cf, "")
			return
		}
		msg = "Saved."
	default:
		msg, err = treeOp(v, sel, do)
	}
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	if code, err := c.saveTS(r, ts); err != nil {
		if code == http.StatusBadRequest {
			c.showEdit(w, r, code, ts, v, sel, cf, err.Error())
			return
		}
		c.fail(w, r, code, err)
		return
	}
	loc := editPath(ts, v) + "?step=" + url.QueryEscape(sel) + "&flash=" + url.QueryEscape(msg)
	if sel != "" {
		loc += "#step-" + url.PathEscape(sel)
	}
	http.Redirect(w, r, loc, http.StatusSeeOther)
}

// showEdit renders the editor holding an edit that is not stored: refused
// by the server (notSaved says why) or a condition change not saved yet.
func (c *Console) showEdit(w http.ResponseWriter, r *http.Request, code int, ts *deploy.TaskSequence, v *deploy.TSVersion, sel string, cf *condForm, notSaved string) {
	ev, err := c.editorData(r, ts, v, sel, cf)
	if err != nil {
		c.fail(w, r, statusOf(err), err)
		return
	}
	ev.NotSaved, ev.Pending = notSaved, notSaved == ""
	w.WriteHeader(code)
	c.render(w, r, "editor", sessionOf(r), "Edit "+ts.Name, ev)
}

// saveTS puts ts through the admin API as the session's account. The body
// is encoded without HTML escaping so unchanged values keep the bytes the
// store (and an export) had.
func (c *Console) saveTS(r *http.Request, ts *deploy.TaskSequence) (int, error) {
	body, err := deploy.EncodeJSON(ts)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	code, b := c.adminCall(r, http.MethodPut, "/admin/v1/tasksequences/"+url.PathEscape(ts.ID), "application/json", bytes.NewReader(body))
	if code >= 300 {
		return code, errors.New(apiMessage(b))
	}
	return code, nil
}

// copyVersion appends a new In_Development version with v's steps (same
// step ids, so runs and logs compare across versions) and opens it.
func (c *Console) copyVersion(w http.ResponseWriter, r *http.Request, ts *deploy.TaskSequence, v *deploy.TSVersion) {
	nv := *v
	nv.Status = deploy.StatusInDevelopment
	now := c.d.Now().Unix()
	nv.CreatedDate, nv.LastModifiedDate = now, now
	out := deployrjson.AppendTaskSequenceVersions(ts, &deploy.TaskSequence{Versions: []deploy.TSVersion{nv}})
	if ts.VersionsCount == len(ts.Versions) {
		out.VersionsCount = len(out.Versions)
	}
	added := &out.Versions[len(out.Versions)-1]
	if code, err := c.saveTS(r, out); err != nil {
		c.fail(w, r, code, fmt.Errorf("new version: %w", err))
		return
	}
	back(w, r, editPath(out, added), fmt.Sprintf("Version %d (In_Development) is a copy of version %d; edit it here, then set it Active.", added.VersionNo, v.VersionNo))
}

// place is where a step sits in the tree.
type place struct {
	list       *[]deploy.Step // the slice holding the step
	index      int
	parent     *deploy.Step   // the enclosing group; nil at the top level
	outer      *[]deploy.Step // the slice holding parent
	outerIndex int
	grand      *deploy.Step // parent's enclosing group
}

func (p place) step() *deploy.Step { return &(*p.list)[p.index] }

func locate(v *deploy.TSVersion, id string) (place, error) {
	if id == "" {
		return place{}, deploy.Errorf(deploy.KindInvalid, "no step chosen")
	}
	for at := range deploy.Steps(v.Steps) {
		if !deploy.SameID(at.Step.ID, id) {
			continue
		}
		p := place{list: siblings(v, at), index: at.Index}
		if g := at.Parent; g != nil {
			p.parent, p.outer, p.outerIndex = g.Step, siblings(v, *g), g.Index
			if g.Parent != nil {
				p.grand = g.Parent.Step
			}
		}
		return p, nil
	}
	return place{}, deploy.Errorf(deploy.KindNotFound, "version %d has no step %s (removed meanwhile?)", v.VersionNo, id)
}

// setParent fixes a moved step's links: groupId names its group, and only
// top-level steps carry taskSequenceVersionId (as DeployR writes them).
func setParent(s *deploy.Step, group *deploy.Step, v *deploy.TSVersion) {
	if group == nil {
		s.GroupID = nil
		s.TaskSequenceVersionID = deploy.StrPtr(v.ID)
		return
	}
	s.GroupID = deploy.StrPtr(group.ID)
	s.TaskSequenceVersionID = nil
}

// treeOp moves, removes or switches one step; it returns what it did.
func treeOp(v *deploy.TSVersion, id, op string) (string, error) {
	p, err := locate(v, id)
	if err != nil {
		return "", err
	}
	s := p.step()
	name := s.Name
	list := *p.list
	switch op {
	case "up", "down":
		j := p.index - 1
		if op == "down" {
			j = p.index + 1
		}
		if j < 0 || j >= len(list) {
			return "", deploy.Errorf(deploy.KindInvalid, "%q is already the %s step of its group", name, map[string]string{"up": "first", "down": "last"}[op])
		}
		list[p.index], list[j] = list[j], list[p.index]
		return fmt.Sprintf("Moved %q %s.", name, op), nil
	case "in":
		if p.index == 0 || !list[p.index-1].IsGroup {
			return "", deploy.Errorf(deploy.KindInvalid, "%q has no group right above it to move into", name)
		}
		st := *s
		*p.list = slices.Delete(*p.list, p.index, p.index+1)
		g := &(*p.list)[p.index-1]
		setParent(&st, g, v)
		g.GroupMembers = append(g.GroupMembers, st)
		return fmt.Sprintf("Moved %q into group %q.", name, g.Name), nil
	case "out":
		if p.parent == nil {
			return "", deploy.Errorf(deploy.KindInvalid, "%q is not in a group", name)
		}
		st := *s
		gname := p.parent.Name
		*p.list = slices.Delete(*p.list, p.index, p.index+1)
		setParent(&st, p.grand, v)
		*p.outer = slices.Insert(*p.outer, p.outerIndex+1, st)
		return fmt.Sprintf("Moved %q out of group %q.", name, gname), nil
	case "remove":
		what := "step"
		if s.IsGroup {
			what = fmt.Sprintf("group and its %d steps", countSteps(s.GroupMembers))
		}
		*p.list = slices.Delete(*p.list, p.index, p.index+1)
		return fmt.Sprintf("Removed %s %q.", what, name), nil
	case "enable", "disable":
		s.Enabled = op == "enable"
		return fmt.Sprintf("%q is %sd.", name, op), nil
	case "coe-on", "coe-off":
		s.ContinueOnError = op == "coe-on"
		if s.ContinueOnError {
			return fmt.Sprintf("The sequence continues when %q fails.", name), nil
		}
		return fmt.Sprintf("The sequence stops when %q fails.", name), nil
	}
	return "", deploy.Errorf(deploy.KindInvalid, "unknown edit %q", op)
}

func countSteps(steps []deploy.Step) int {
	n := 0
	for range deploy.AllSteps(steps) {
		n++
	}
	return n
}

// addStep adds a group or a step of the chosen definition, every option
// at its default (as DeployR's editor and the templates do): at the end,
// after the selected step or inside the selected group. It returns the new
// step's id.
func (c *Console) addStep(r *http.Request, v *deploy.TSVersion) (string, string, error) {
	typ, name, where := r.PostFormValue("type"), strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("where")
	now := c.d.Now().Unix()
	s := deploy.Step{ID: uuid.NewString(), Description: deploy.StrPtr(""), Settings: map[string]string{}, ContentItems: map[string]string{},
		Enabled: true, Condition: deploy.StrPtr(""), CreatedDate: now, LastModifiedDate: now}
	if typ == "group" {
		s.IsGroup = true
		if name == "" {
			name = "New group"
		}
	} else {
		d, err := c.defFinder(r)(typ)
		if err != nil {
			return "", "", err
		}
		if d == nil {
			return "", "", deploy.Errorf(deploy.KindInvalid, "type: no step definition %q on this server", typ)
		}
		dv := d.Latest()
		if dv == nil {
			return "", "", deploy.Errorf(deploy.KindInvalid, "type: step definition %q has no versions", d.Name)
		}
		s.TypeID, s.StepDefinitionVersionID, s.StepDefinitionVersionNo = deploy.StrPtr(d.ID), deploy.StrPtr(dv.ID), &dv.VersionNo
		for _, o := range dv.Options {
			if o.IsContent() {
				s.ContentItems[o.Name] = deploy.Str(o.DefaultValue)
			} else {
				s.Settings[o.Name] = deploy.Str(o.DefaultValue)
			}
		}
		if name == "" {
			name = d.Name
		}
	}
	s.Name = name
	sel := r.PostFormValue("step")
	switch where {
	case "after", "inside":
		p, err := locate(v, sel)
		if err != nil {
			return "", "", err
		}
		if where == "inside" {
			g := p.step()
			if !g.IsGroup {
				return "", "", deploy.Errorf(deploy.KindInvalid, "%q is a step, not a group: add after it instead", g.Name)
			}
			setParent(&s, g, v)
			g.GroupMembers = append(g.GroupMembers, s)
			return s.ID, fmt.Sprintf("Added %q to group %q.", s.Name, g.Name), nil
		}
		setParent(&s, p.parent, v)
		*p.list = slices.Insert(*p.list, p.index+1, s)
	default:
		setParent(&s, nil, v)
		v.Steps = append(v.Steps, s)
	}
	return s.ID, fmt.Sprintf("Added %q.", s.Name), nil
}
