package web

// The editor's step form: fields generated from the step definition's
// options, content pickers, and the builder for DeployR's query
// conditions. A value the form sends back unchanged keeps the stored
// bytes, so an edited sequence still exports as DeployR wrote it, but for
// the values that were changed.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
)

// choice is one <option>.
type choice struct {
	Value, Label string
	Selected     bool
}

// optField is one option of the step's definition as a form field.
type optField struct {
	Key, Name, Label, Help string
	// Kind: text, textarea, number, choice, password, content, contentlist.
	Kind             string
	Value, Default   string
	Required, IsSet  bool
	Choices          []choice
	Rules            []string
	Errors, Warnings []string
}

// stepForm is the settings form of the selected step or group.
type stepForm struct {
	Node             *stepNode
	Desc             string
	DefName          string
	DefMissing       bool
	Fields           []optField
	Hidden           []string // hidden options, kept as they are
	Cond             *condForm
	Errors, Warnings []string // not about one option
}

// condForm is the condition of a step: none, a DeployR query (the
// builder) or a PowerShell expression.
type condForm struct {
	Kind       string
	PowerShell string
	Root       *condGroup
}

type condGroup struct {
	Path  string
	Join  string
	Items []condItem
}

type condItem struct {
	Path  string
	Group *condGroup
	Field string
	Value string
	Ops   []choice
}

// condOps are the comparison operators, spelled as DeployR writes them.
var condOps = []string{"equals", "notEquals", "contains", "notContains", "startsWith", "endsWith",
	"greaterThan", "lessThan", "exists", "notExists"}

// Bounds of a posted condition: the parser's nesting limit and a cap on
// comparisons, so a forged form cannot make the server build a huge tree.
const (
	maxCondDepth = 32
	maxCondItems = 200
)

func (c *Console) stepForm(r *http.Request, n *stepNode, defs func(string) (*deploy.StepDefinition, error), cf *condForm) (*stepForm, error) {
	st := n.Step
	f := &stepForm{Node: n, Desc: deploy.Str(st.Description), Cond: cf}
	if f.Cond == nil {
		f.Cond = condFromString(deploy.Str(st.Condition))
	}
	optErr := map[string]*[2][]string{}
	for i, list := range [][]deploy.FieldError{n.Errors, n.Warnings} {
		for _, fe := range list {
			key := strings.ToLower(fe.Field)
			if key == "" || key == "name" || key == "id" || key == "typeid" || key == "stepdefinitionversionno" || key == "condition" {
				msg := fe.Message
				if fe.Field != "" {
					msg = fe.Field + ": " + msg
				}
				if i == 0 {
					f.Errors = append(f.Errors, msg)
				} else {
					f.Warnings = append(f.Warnings, msg)
				}
				continue
			}
			p := optErr[key]
			if p == nil {
				p = &[2][]string{}
				optErr[key] = p
			}
			p[i] = append(p[i], fe.Message)
		}
	}
	if st.IsGroup {
		return f, nil
	}
	d, err := defs(deploy.Str(st.TypeID))
	if err != nil {
		return nil, err
	}
	var ver *deploy.StepDefVersion
	if d != nil {
		ver, _ = d.ResolveVersion(deploy.Str(st.StepDefinitionVersionID), st.StepDefinitionVersionNo)
		f.DefName = d.Name
	}
	if ver == nil {
		f.DefMissing = true
		return f, nil
	}
	items, err := c.d.Store.ContentItems(r.Context())
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b *deploy.ContentItem) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	for _, o := range ver.Options {
		src := st.Settings
		if o.IsContent() {
			src = st.ContentItems
		}
		_, val, _ := lookupKey(src, o.Name)
		if o.Hidden {
			f.Hidden = append(f.Hidden, o.Name)
			continue
		}
		fld := optField{Key: "opt:" + o.Name, Name: o.Name, Label: o.DisplayName, Help: deploy.Str(o.Description),
			Required: o.Required, Value: val, Default: deploy.Str(o.DefaultValue)}
		if fld.Label == "" {
			fld.Label = o.Name
		}
		switch o.Type {
		case deploy.OptionNumber:
			fld.Kind = "number"
		case deploy.OptionBoolean:
			fld.Kind = "choice"
			fld.Choices = withCurrent([]choice{{Value: "true", Label: "Yes"}, {Value: "false", Label: "No"}}, val, true)
		case deploy.OptionDropDownList:
			fld.Kind = "choice"
			var cs []choice
			for _, d := range o.DropdownOptions {
				cs = append(cs, choice{Value: d.Value, Label: d.DisplayName})
			}
			fld.Choices = withCurrent(cs, val, true)
		case deploy.OptionPassword:
			fld.Kind, fld.IsSet, fld.Value = "password", val != "", ""
		case deploy.OptionContent, deploy.OptionContentList:
			fld.Kind = "content"
			if o.Type == deploy.OptionContentList {
				fld.Kind = "contentlist"
			}
			fld.Choices = contentChoices(items, deploy.Purpose(deploy.Str(o.ContentItemPurpose)), val, o.Type == deploy.OptionContentList)
		case deploy.OptionMultiLineText, deploy.OptionLargeText, deploy.OptionScript:
			fld.Kind = "textarea"
		default:
			fld.Kind = "text"
		}
		for _, v := range o.Validations {
			if v.ErrorMessage != "" {
				fld.Rules = append(fld.Rules, v.ErrorMessage)
			} else {
				fld.Rules = append(fld.Rules, "must match "+v.RegexRule)
			}
		}
		if p := optErr[strings.ToLower(o.Name)]; p != nil {
			fld.Errors, fld.Warnings = p[0], p[1]
			delete(optErr, strings.ToLower(o.Name))
		}
		f.Fields = append(f.Fields, fld)
	}
	for k, p := range optErr { // problems of options the form does not show
		for _, m := range p[0] {
			f.Errors = append(f.Errors, k+": "+m)
		}
		for _, m := range p[1] {
			f.Warnings = append(f.Warnings, k+": "+m)
		}
	}
	return f, nil
}

// withCurrent marks val selected among cs, adding it when it is not one
// of them (a %VARIABLE% reference, or a value the definition dropped), so
// a save never replaces it silently. With empty, "" is a choice too.
func withCurrent(cs []choice, val string, keepEmpty bool) []choice {
	found := false
	for i := range cs {
		if cs[i].Value == val {
			cs[i].Selected, found = true, true
		}
	}
	if !found && (val != "" || keepEmpty) {
		label := val + " (current value)"
		if val == "" {
			label = "(not set)"
		}
		cs = append([]choice{{Value: val, Label: label, Selected: true}}, cs...)
	}
	return cs
}

// contentChoices lists the content versions an option may point at: items
// of the option's purpose (any item for Other), versions that are not
// deprecated, plus whatever is chosen now.
func contentChoices(items []*deploy.ContentItem, want deploy.Purpose, val string, list bool) []choice {
	chosen := map[string]bool{}
	if list {
		for _, s := range deploy.ContentList(val) {
			chosen[deploy.CanonicalRef(s)] = true
		}
	} else if v := strings.TrimSpace(val); v != "" {
		chosen[deploy.CanonicalRef(v)] = true
	}
	var cs []choice
	if !list {
		cs = append(cs, choice{Value: "", Label: "(none)", Selected: len(chosen) == 0})
	}
	seen := map[string]bool{}
	for _, it := range items {
		if want != "" && want != deploy.PurposeOther && it.Purpose != want {
			continue
		}
		for _, v := range it.Versions {
			ref := deploy.Ref{ID: it.ID, VersionNo: v.VersionNo}.String()
			sel := chosen[ref] // it.ID is stored canonical
			if v.Status == deploy.StatusDeprecated && !sel {
				continue
			}
			label := fmt.Sprintf("%s v%d (%s)", it.Name, v.VersionNo, v.Status)
			if v.AwaitingContent {
				label += ", awaiting content"
			}
			cs = append(cs, choice{Value: ref, Label: label, Selected: sel})
			seen[ref] = true
		}
	}
	for ref := range chosen {
		if !seen[ref] {
			cs = append(cs, choice{Value: ref, Label: ref + " (not offered here: another purpose, or not on this server)", Selected: true})
		}
	}
	return cs
}

// lookupKey finds key in m exactly, else case-insensitively (DeployR's
// own exports spell "scriptName" and "ScriptName").
func lookupKey(m map[string]string, key string) (string, string, bool) {
	if v, ok := m[key]; ok {
		return key, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return k, v, true
		}
	}
	return key, "", false
}

// sameText compares two texts as a browser sends them back: a textarea
// turns every line break into CRLF.
func sameText(a, b string) bool {
	return a == b || strings.ReplaceAll(a, "\r\n", "\n") == strings.ReplaceAll(b, "\r\n", "\n")
}

// applyStepForm copies the posted step form onto the step and returns the
// posted condition form. A condition-builder action (do = cond-…) changes
// only the form shown, and pending is true: nothing is saved until Save.
func (c *Console) applyStepForm(r *http.Request, v *deploy.TSVersion, id, do string) (bool, *condForm, error) {
	p, err := locate(v, id)
	if err != nil {
		return false, nil, err
	}
	st := p.step()
	form := r.PostForm
	if vs, ok := form["name"]; ok {
		st.Name = strings.TrimSpace(vs[0])
	}
	if vs, ok := form["description"]; ok && !sameText(vs[0], deploy.Str(st.Description)) {
		st.Description = deploy.StrPtr(vs[0])
	}
	if form.Get("flags") == "1" {
		st.Enabled = form.Get("enabled") == "1"
		st.ContinueOnError = form.Get("coe") == "1"
	}
	if !st.IsGroup {
		d, err := c.defFinder(r)(deploy.Str(st.TypeID))
		if err != nil {
			return false, nil, err
		}
		if d != nil {
			if ver, ok := d.ResolveVersion(deploy.Str(st.StepDefinitionVersionID), st.StepDefinitionVersionNo); ok {
				applyOptions(st, ver, form)
			}
		}
	}
	if _, ok := form["cond.kind"]; !ok {
		return false, nil, nil
	}
	cf, q, err := parseCondForm(form)
	if err != nil {
		return false, nil, err
	}
	if act, path, ok := strings.Cut(do, ":"); ok && strings.HasPrefix(act, "cond-") {
		if err := editQuery(q, act, path); err != nil {
			return false, nil, err
		}
		cf = &condForm{Kind: "query", PowerShell: cf.PowerShell, Root: groupForm(q, "r")}
		return true, cf, nil
	}
	if nc := cf.condition(q); !sameCondition(deploy.Str(st.Condition), nc) {
		st.Condition = deploy.StrPtr(nc)
	}
	return false, cf, nil
}

// applyOptions sets the options the form sent; an option it did not send
// (and an empty password field) keeps its value.
func applyOptions(st *deploy.Step, ver *deploy.StepDefVersion, form url.Values) {
	for _, o := range ver.Options {
		vs, ok := form["opt:"+o.Name]
		if o.Hidden || !ok {
			continue
		}
		m := &st.Settings
		if o.IsContent() {
			m = &st.ContentItems
		}
		if *m == nil {
			*m = map[string]string{}
		}
		key, cur, _ := lookupKey(*m, o.Name)
		var nv string
		switch o.Type {
		case deploy.OptionContentList:
			var refs []string
			for _, s := range vs {
				if s = strings.TrimSpace(s); s != "" {
					refs = append(refs, s)
				}
			}
			if slices.Equal(refs, deploy.ContentList(cur)) {
				continue
			}
			nv = ""
			if len(refs) > 0 {
				b, _ := deploy.EncodeJSON(refs)
				nv = string(b)
			}
		case deploy.OptionPassword:
			nv = vs[0]
			if nv == "" {
				if form.Get("clear:"+o.Name) != "1" {
					continue
				}
			}
		default:
			nv = vs[0]
		}
		if !sameText(nv, cur) {
			(*m)[key] = nv
		}
	}
}

// condFromString is the form of a stored condition. One that does not
// parse is shown as PowerShell text, so nothing of it is lost.
func condFromString(s string) *condForm {
	cond, err := sequence.ParseCondition(s)
	switch {
	case err != nil:
		return &condForm{Kind: "powershell", PowerShell: s, Root: groupForm(&sequence.Query{Operator: "and"}, "r")}
	case cond == nil:
		return &condForm{Kind: "none", Root: groupForm(&sequence.Query{Operator: "and"}, "r")}
	case cond.Query != nil:
		return &condForm{Kind: "query", Root: groupForm(cond.Query, "r")}
	}
	return &condForm{Kind: "powershell", PowerShell: cond.PowerShell, Root: groupForm(&sequence.Query{Operator: "and"}, "r")}
}

func groupForm(q *sequence.Query, path string) *condGroup {
	g := &condGroup{Path: path, Join: strings.ToLower(q.Operator)}
	if g.Join != "or" {
		g.Join = "and"
	}
	for i, it := range q.Items {
		p := path + "." + strconv.Itoa(i)
		if it.Group != nil {
			g.Items = append(g.Items, condItem{Path: p, Group: groupForm(it.Group, p)})
			continue
		}
		ops := make([]choice, 0, len(condOps)+1)
		found := false
		for _, op := range condOps {
			sel := strings.EqualFold(op, it.Operator)
			found = found || sel
			ops = append(ops, choice{Value: op, Label: op, Selected: sel})
		}
		if !found && it.Operator != "" {
			ops = append([]choice{{Value: it.Operator, Label: it.Operator + " (unknown)", Selected: true}}, ops...)
		}
		g.Items = append(g.Items, condItem{Path: p, Field: it.Field, Value: it.Value, Ops: ops})
	}
	return g
}

// parseCondForm reads the posted condition: its kind, the PowerShell text
// and the builder's query (q.* fields, one group per path).
func parseCondForm(form url.Values) (*condForm, *sequence.Query, error) {
	cf := &condForm{Kind: form.Get("cond.kind"), PowerShell: form.Get("cond.ps")}
	budget := maxCondItems
	q, err := parseGroup(form, "r", 0, &budget)
	if err != nil {
		return nil, nil, err
	}
	cf.Root = groupForm(q, "r")
	return cf, q, nil
}

func parseGroup(form url.Values, path string, depth int, budget *int) (*sequence.Query, error) {
	if depth > maxCondDepth {
		return nil, deploy.Errorf(deploy.KindInvalid, "condition: groups nest deeper than %d", maxCondDepth)
	}
	n, _ := strconv.Atoi(form.Get("q.n." + path))
	if n < 0 || n > *budget {
		return nil, deploy.Errorf(deploy.KindInvalid, "condition: more than %d comparisons", maxCondItems)
	}
	*budget -= n
	q := &sequence.Query{Operator: form.Get("q.join." + path), Items: []sequence.QueryItem{}}
	if q.Operator != "or" {
		q.Operator = "and"
	}
	for i := range n {
		p := path + "." + strconv.Itoa(i)
		if form.Get("q.kind."+p) == "g" {
			sub, err := parseGroup(form, p, depth+1, budget)
			if err != nil {
				return nil, err
			}
			q.Items = append(q.Items, sequence.QueryItem{Group: sub})
			continue
		}
		q.Items = append(q.Items, sequence.QueryItem{Field: strings.TrimSpace(form.Get("q.f." + p)),
			Operator: form.Get("q.o." + p), Value: form.Get("q.v." + p)})
	}
	return q, nil
}

// editQuery applies a builder action: cond-add (a comparison) or
// cond-group (a nested group) to the group at path, cond-del removes the
// item at path.
func editQuery(q *sequence.Query, act, path string) error {
	idx, err := pathIndexes(path)
	if err != nil {
		return err
	}
	bad := deploy.Errorf(deploy.KindInvalid, "condition: no item %s", path)
	switch act {
	case "cond-add", "cond-group":
		g := q
		for _, i := range idx {
			if i >= len(g.Items) || g.Items[i].Group == nil {
				return bad
			}
			g = g.Items[i].Group
		}
		if act == "cond-add" {
			g.Items = append(g.Items, sequence.QueryItem{Operator: "equals"})
		} else {
			if len(idx) >= maxCondDepth {
				return deploy.Errorf(deploy.KindInvalid, "condition: groups nest deeper than %d", maxCondDepth)
			}
			g.Items = append(g.Items, sequence.QueryItem{Group: &sequence.Query{Operator: "and", Items: []sequence.QueryItem{{Operator: "equals"}}}})
		}
		return nil
	case "cond-del":
		if len(idx) == 0 {
			return bad
		}
		g := q
		for _, i := range idx[:len(idx)-1] {
			if i >= len(g.Items) || g.Items[i].Group == nil {
				return bad
			}
			g = g.Items[i].Group
		}
		last := idx[len(idx)-1]
		if last >= len(g.Items) {
			return bad
		}
		g.Items = slices.Delete(g.Items, last, last+1)
		return nil
	}
	return deploy.Errorf(deploy.KindInvalid, "condition: unknown action %q", act)
}

// pathIndexes turns "r.1.0" into [1 0].
func pathIndexes(path string) ([]int, error) {
	parts := strings.Split(path, ".")
	if parts[0] != "r" || len(parts) > maxCondDepth+2 {
		return nil, deploy.Errorf(deploy.KindInvalid, "condition: bad item %q", path)
	}
	var idx []int
	for _, s := range parts[1:] {
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 {
			return nil, deploy.Errorf(deploy.KindInvalid, "condition: bad item %q", path)
		}
		idx = append(idx, i)
	}
	return idx, nil
}

// condition is the condition string the form stands for.
func (cf *condForm) condition(q *sequence.Query) string {
	switch cf.Kind {
	case "powershell":
		return strings.TrimSpace(cf.PowerShell)
	case "query":
		if len(q.Items) == 0 {
			return ""
		}
		var b strings.Builder
		writeQuery(&b, q)
		return b.String()
	}
	return ""
}

// writeQuery writes q as DeployR does: {"operator":…,"items":[…]}, each
// comparison {"field":…,"operator":…,"value":…}, without HTML escaping.
func writeQuery(b *strings.Builder, q *sequence.Query) {
	b.WriteString(`{"operator":` + jsonString(q.Operator) + `,"items":[`)
	for i, it := range q.Items {
		if i > 0 {
			b.WriteByte(',')
		}
		if it.Group != nil {
			writeQuery(b, it.Group)
			continue
		}
		b.WriteString(`{"field":` + jsonString(it.Field) + `,"operator":` + jsonString(it.Operator) + `,"value":` + jsonString(it.Value) + `}`)
	}
	b.WriteString("]}")
}

func jsonString(s string) string {
	b, _ := deploy.EncodeJSON(s)
	return string(b)
}

// sameCondition reports whether two conditions mean the same: then the
// stored text is kept as it was written (its spelling, operator case and
// number values included).
func sameCondition(a, b string) bool {
	if strings.TrimSpace(a) == strings.TrimSpace(b) {
		return true
	}
	ca, err1 := sequence.ParseCondition(a)
	cb, err2 := sequence.ParseCondition(b)
	switch {
	case err1 != nil || err2 != nil || ca == nil || cb == nil:
		return false
	case ca.Query != nil && cb.Query != nil:
		return sameQuery(ca.Query, cb.Query)
	case ca.Query == nil && cb.Query == nil:
		return sameText(ca.PowerShell, cb.PowerShell)
	}
	return false
}

func sameQuery(a, b *sequence.Query) bool {
	if !strings.EqualFold(a.Operator, b.Operator) || len(a.Items) != len(b.Items) {
		return false
	}
	for i := range a.Items {
		x, y := a.Items[i], b.Items[i]
		switch {
		case (x.Group == nil) != (y.Group == nil):
			return false
		case x.Group != nil:
			if !sameQuery(x.Group, y.Group) {
				return false
			}
		case x.Field != y.Field || !strings.EqualFold(x.Operator, y.Operator) || x.Value != y.Value:
			return false
		}
	}
	return true
}
