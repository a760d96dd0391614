package validate

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// Resolver looks up what a task sequence refers to. Errors of
// deploy.KindNotFound mean "not on this server"; any other error aborts
// validation.
type Resolver interface {
	StepDefinition(ctx context.Context, id string) (*deploy.StepDefinition, error)
	ContentItem(ctx context.Context, id string) (*deploy.ContentItem, error)
	TaskSequence(ctx context.Context, id string) (*deploy.TaskSequence, error)
}

// Result lists the problems found. Errors make the document invalid;
// Warnings do not. CannotRun names every enabled step that cannot run as
// things stand, with the reason: its step definition is missing or has no
// implementation in the agent, its content is not on the server or still
// awaits its bytes, a required option is empty, or the child task sequence
// it runs is missing.
type Result struct {
	Errors    []deploy.FieldError
	Warnings  []deploy.FieldError
	CannotRun []deploy.FieldError
}

// Err returns nil when there are no errors, else a KindInvalid *deploy.Error
// carrying them in Fields.
func (r Result) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	e := deploy.Errorf(deploy.KindInvalid, "%s", r.Errors[0].String())
	if n := len(r.Errors); n > 1 {
		e.Message += fmt.Sprintf(" (and %d more problems)", n-1)
	}
	e.Fields = r.Errors
	return e
}

var (
	guidRE   = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	varRefRE = regexp.MustCompile(`%[^%\s]+%`)
)

func isGUID(s string) bool { return guidRE.MatchString(s) }

// checker carries one validation run.
type checker struct {
	ctx  context.Context
	r    Resolver
	res  Result
	ts   *deploy.TaskSequence
	defs map[string]*deploy.StepDefinition // resolved definitions; nil = not on server
	res2 map[string]*deploy.ContentItem    // resolved content items; nil = not on server
	re   map[string]*regexp.Regexp
	ver  int  // version of ts being checked
	off  bool // the step being checked is disabled (or inside a disabled group)
	// typeID and defName are those of the step being checked.
	typeID, defName string
}

// cannot records that the step at path cannot run, once per reason.
func (c *checker) cannot(path, format string, args ...any) {
	if c.off {
		return
	}
	msg := fmt.Sprintf(format, args...)
	for _, f := range c.res.CannotRun {
		if f.Step == path && f.Message == msg {
			return
		}
	}
	c.res.CannotRun = append(c.res.CannotRun, deploy.FieldError{Step: path, Message: msg})
}

func (c *checker) errorf(step, field, format string, args ...any) {
	c.res.Errors = append(c.res.Errors, deploy.FieldError{Step: step, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) warnf(step, field, format string, args ...any) {
	c.res.Warnings = append(c.res.Warnings, deploy.FieldError{Step: step, Field: field, Message: fmt.Sprintf(format, args...)})
}

// TaskSequence validates ts and what it refers to. The error is non-nil
// only when r fails with something other than not-found.
func TaskSequence(ctx context.Context, ts *deploy.TaskSequence, r Resolver) (Result, error) {
	c := &checker{ctx: ctx, r: r, ts: ts,
		defs: map[string]*deploy.StepDefinition{}, res2: map[string]*deploy.ContentItem{}, re: map[string]*regexp.Regexp{}}
	if strings.TrimSpace(ts.ID) == "" {
		c.errorf("", "id", "is empty")
	}
	if strings.TrimSpace(ts.Name) == "" {
		c.errorf("", "name", "is empty")
	}
	seenVersion := map[int]bool{}
	for i := range ts.Versions {
		v := &ts.Versions[i]
		if seenVersion[v.VersionNo] {
			c.errorf("", "versionNo", "version %d appears twice", v.VersionNo)
		}
		seenVersion[v.VersionNo] = true
		if !v.Status.Valid() {
			c.errorf("", "status", "version %d: status %q is not In_Development, Active or Deprecated", v.VersionNo, v.Status)
		}
		c.ver = v.VersionNo
		if v.Status == deploy.StatusInDevelopment || v.Status == deploy.StatusDeprecated {
			c.warnf("", "status", "version %d is %s: machines are offered Active versions only; to run it for testing, set it Active with `imprint ts status %s %d Active`",
				v.VersionNo, v.Status, ts.ID, v.VersionNo)
		}
		ids := map[string]bool{}
		if err := c.steps(v.Steps, ids); err != nil {
			return Result{}, err
		}
	}
	return c.res, nil
}

func (c *checker) steps(steps []deploy.Step, ids map[string]bool) error {
	for at := range deploy.Steps(steps) {
		s, path := at.Step, at.Path
		c.off = at.Disabled
		if strings.TrimSpace(s.Name) == "" {
			c.errorf(path, "name", "is empty")
		}
		switch {
		case strings.TrimSpace(s.ID) == "":
			c.errorf(path, "id", "is empty")
		case ids[deploy.CanonicalID(s.ID)]:
			c.errorf(path, "id", "step id %s is used by another step", s.ID)
		}
		ids[deploy.CanonicalID(s.ID)] = true
		c.condition(path, s)
		if s.IsGroup {
			continue
		}
		if err := c.step(path, s); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) condition(path string, s *deploy.Step) {
	cond, err := sequence.ParseCondition(deploy.Str(s.Condition))
	switch {
	case err != nil:
		c.errorf(path, "condition", "%v", err)
	case cond != nil && cond.Query == nil:
		c.warnf(path, "condition", "PowerShell condition needs pwsh on the machine at run time")
	}
}

func (c *checker) step(path string, s *deploy.Step) error {
	typeID := strings.TrimSpace(deploy.Str(s.TypeID))
	switch {
	case typeID == "":
		c.errorf(path, "typeId", "is empty")
		return nil
	case !isGUID(typeID):
		c.errorf(path, "typeId", "%q is not a GUID", typeID)
		return nil
	}
	def, err := c.definition(typeID)
	if err != nil {
		return err
	}
	if def == nil {
		switch {
		case stepdefs.IsImprintID(typeID):
			c.errorf(path, "typeId", "unknown step type %s", typeID)
		case stepdefs.IsDeployRID(typeID):
			msg := stepdefs.UnsupportedMessage(typeID)
			c.warnf(path, "typeId", "%s", msg)
			c.cannot(path, "%s", msg)
		default:
			c.warnf(path, "typeId", "step definition %s is not on this server; the step cannot run until it is imported", typeID)
			c.cannot(path, "step definition %s is not on this server", typeID)
		}
		return nil
	}
	// The version id settles which version is meant; the number only
	// when the id is unknown (DeployR's exports can disagree on it).
	v, ok := def.ResolveVersion(deploy.Str(s.StepDefinitionVersionID), s.StepDefinitionVersionNo)
	if !ok {
		if s.StepDefinitionVersionNo != nil {
			c.errorf(path, "stepDefinitionVersionNo", "step definition %q has no version %d", def.Name, *s.StepDefinitionVersionNo)
		} else {
			c.errorf(path, "typeId", "step definition %q has no versions", def.Name)
		}
		return nil
	}
	c.typeID, c.defName = typeID, def.Name
	for i := range v.Options {
		if err := c.option(path, def, &v.Options[i], s); err != nil {
			return err
		}
	}
	if !stepdefs.IsImplemented(typeID) {
		if _, _, ok := stepdefs.ScriptOptions(v); !ok {
			c.cannot(path, "the agent has no implementation of %q (no built-in step and no script to run)", def.Name)
		}
	}
	if deploy.SameID(typeID, stepdefs.TypeRunTaskSequence) {
		return c.child(path, s)
	}
	return nil
}

// definition resolves a type id: the catalogue first, then the resolver.
// It returns nil, nil when neither has it.
func (c *checker) definition(id string) (*deploy.StepDefinition, error) {
	key := deploy.CanonicalID(id)
	if d, ok := c.defs[key]; ok {
		return d, nil
	}
	d, ok := stepdefs.Builtin(id)
	if !ok {
		var err error
		d, err = c.r.StepDefinition(c.ctx, key)
		if deploy.IsNotFound(err) {
			d, err = nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("resolve step definition %s: %w", id, err)
		}
	}
	c.defs[key] = d
	return d, nil
}

func (c *checker) contentItem(id string) (*deploy.ContentItem, error) {
	key := deploy.CanonicalID(id)
	if ci, ok := c.res2[key]; ok {
		return ci, nil
	}
	ci, err := c.r.ContentItem(c.ctx, key)
	if deploy.IsNotFound(err) {
		ci, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve content item %s: %w", id, err)
	}
	c.res2[key] = ci
	return ci, nil
}

// lookup finds key in m, exactly first, then case-insensitively.
func lookup(m map[string]string, key string) (string, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

func (c *checker) option(path string, def *deploy.StepDefinition, o *deploy.Option, s *deploy.Step) error {
	src := s.Settings
	if o.IsContent() {
		src = s.ContentItems
	}
	val, present := lookup(src, o.Name)
	if emptyValue(o, val) {
		val = deploy.Str(o.DefaultValue)
	}
	if emptyValue(o, val) {
		if !o.Required {
			return nil
		}
		what := "option"
		if o.IsContent() {
			what = "content option"
		}
		if !present && o.DefaultValue == nil {
			c.errorf(path, o.Name, "required %s not set", what)
			return nil
		}
		// DeployR exports required options stored as "" with a "" default:
		// accepted, and the step fails only if still empty when it runs.
		c.warnf(path, o.Name, "required %s is empty; the step fails when it runs unless it gets a value", what)
		c.cannot(path, "required %s %s is empty", what, o.Name)
		return nil
	}
	for _, p := range checkValue(def, o, val, c.re) {
		c.errorf(path, o.Name, "%s", p)
	}
	if o.IsContent() && !varRefRE.MatchString(val) {
		return c.contentRefs(path, o, val)
	}
	return nil
}

// checkValue applies an option's static rules to a non-empty value: type,
// dropdown choices and regex validations. It returns one message per
// problem. Values with %VAR% references are left to run time.
func checkValue(def *deploy.StepDefinition, o *deploy.Option, val string, cache map[string]*regexp.Regexp) []string {
	if varRefRE.MatchString(val) {
		return nil
	}
	var probs []string
	shown := fmt.Sprintf("%q", val)
	if o.Type == deploy.OptionPassword {
		shown = "the value"
	}
	switch o.Type {
	case deploy.OptionNumber:
		if _, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err != nil {
			probs = append(probs, fmt.Sprintf("%s is not a number", shown))
		}
	case deploy.OptionBoolean:
		if !strings.EqualFold(val, "true") && !strings.EqualFold(val, "false") {
			probs = append(probs, fmt.Sprintf("%s is not true or false", shown))
		}
	case deploy.OptionDropDownList:
		var vals []string
		found := false
		for _, d := range o.DropdownOptions {
			vals = append(vals, d.Value)
			found = found || d.Value == val
		}
		if !found {
			probs = append(probs, fmt.Sprintf("%s is not one of: %s", shown, strings.Join(vals, ", ")))
		}
	case deploy.OptionContent:
		if _, err := parseRef(val); err != nil {
			probs = append(probs, fmt.Sprintf("%s is not a content reference of the form guid:version", shown))
		}
	case deploy.OptionContentList:
		for _, part := range deploy.ContentList(val) {
			if _, err := parseRef(part); err != nil {
				probs = append(probs, fmt.Sprintf("%q is not a content reference of the form guid:version", part))
			}
		}
	}
	for _, v := range o.Validations {
		re, err := compile(v.RegexRule, cache)
		if err != nil {
			probs = append(probs, fmt.Sprintf("step definition %q has an invalid validation regex %q: %v", def.Name, v.RegexRule, err))
			continue
		}
		if !re.MatchString(val) {
			msg := v.ErrorMessage
			if msg == "" {
				msg = "does not match " + v.RegexRule
			}
			probs = append(probs, fmt.Sprintf("%s: %s", shown, msg))
		}
	}
	return probs
}

func compile(rule string, cache map[string]*regexp.Regexp) (*regexp.Regexp, error) {
	if re, ok := cache[rule]; ok {
		return re, nil
	}
	re, err := regexp.Compile(rule)
	if err != nil {
		return nil, err
	}
	cache[rule] = re
	return re, nil
}

// parseRef is deploy.ParseRef plus a GUID check on the id.
func parseRef(s string) (deploy.Ref, error) {
	ref, err := deploy.ParseRef(s)
	if err != nil {
		return ref, err
	}
	if !isGUID(ref.ID) {
		return ref, fmt.Errorf("%q is not a GUID", ref.ID)
	}
	return ref, nil
}

// emptyValue reports whether val leaves option o unset: blank, or for a
// content option an empty list ("[]").
func emptyValue(o *deploy.Option, val string) bool {
	if strings.TrimSpace(val) == "" {
		return true
	}
	return o.IsContent() && len(deploy.ContentList(val)) == 0
}

func (c *checker) contentRefs(path string, o *deploy.Option, val string) error {
	refs := []string{val}
	if o.Type == deploy.OptionContentList {
		refs = deploy.ContentList(val)
	}
	want := deploy.Purpose(deploy.Str(o.ContentItemPurpose))
	for _, s := range refs {
		ref, err := parseRef(s)
		if err != nil {
			continue // reported by checkValue
		}
		ci, err := c.contentItem(ref.ID)
		if err != nil {
			return err
		}
		if ci == nil {
			c.warnf(path, o.Name, "content item %s is not on this server", ref.ID)
			if !stepdefs.IsDeployRContent(ref.ID) {
				c.cannot(path, "content item %s is not on this server", ref.ID)
			} else if why := stepdefs.DeployRContentReason(c.typeID, c.defName); why != "" {
				// The agent skips DeployR's scripts: a step it implements
				// does not need them, any other cannot run without them.
				c.cannot(path, "%s", why)
			}
			continue
		}
		if cv, ok := ci.Version(ref.VersionNo); !ok {
			c.errorf(path, o.Name, "content item %q has no version %d", ci.Name, ref.VersionNo)
		} else if cv.AwaitingContent {
			c.warnf(path, o.Name, "content item %q version %d is awaiting content; supply it with `imprint content version %s PATH --version %d`",
				ci.Name, ref.VersionNo, ci.ID, ref.VersionNo)
			c.cannot(path, "content item %q version %d is awaiting content", ci.Name, ref.VersionNo)
		}
		if want != "" && want != deploy.PurposeOther && ci.Purpose != want {
			c.errorf(path, o.Name, "content item %q is %s content; this option needs %s", ci.Name, ci.Purpose, want)
		}
	}
	return nil
}
