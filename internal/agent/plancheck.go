package agent

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/steps/disksteps"
)

// dryRunRegistry is the registry a real run here would use: the built-in
// steps, with the disk steps when the client can stream images (as in the
// boot image). Nothing registered is run.
func (a *Agent) dryRunRegistry() *sequence.Registry {
	if a.Registry != nil {
		return a.Registry
	}
	deps := Deps{TempDir: os.TempDir(), Agent: a.Executable, Sleep: a.Sleep}
	if streamer, ok := a.Client.(disksteps.Content); ok {
		deps.Disk = &disksteps.Deps{Content: streamer, TempDir: os.TempDir(), Disks: a.Disks}
	}
	return DefaultRegistry(deps)
}

// planCheck says, for the dry run, why a step cannot run on this machine:
// its definition is not on the server (or is a DeployR built-in Imprint
// lacks), this agent has no implementation of it (for this platform or
// boot phase), a required option is empty, or its content cannot be had.
func (a *Agent) planCheck(reg *sequence.Registry) StepCheck {
	defs := map[string]*deploy.StepDefinition{}
	missing := map[string]string{}
	return func(ctx context.Context, s *deploy.Step, vars *sequence.Vars) (string, error) {
		typeID := strings.ToLower(strings.TrimSpace(deploy.Str(s.TypeID)))
		if typeID == "" {
			return "the step has no type", nil
		}
		if why, ok := missing[typeID]; ok {
			return why, nil
		}
		def, ok := defs[typeID]
		if !ok {
			if b, isBuiltin := stepdefs.Builtin(typeID); isBuiltin {
				def = b
			} else {
				d, err := a.Client.StepDefinition(ctx, typeID)
				switch {
				case deploy.IsNotFound(err) && stepdefs.IsDeployRID(typeID):
					missing[typeID] = stepdefs.UnsupportedMessage(typeID)
				case deploy.IsNotFound(err):
					missing[typeID] = "step definition " + typeID + " is not on the server"
				case err != nil:
					missing[typeID] = "step definition " + typeID + ": " + deploy.ErrorMessage(err)
				}
				if why, ok := missing[typeID]; ok {
					return why, nil
				}
				def = d
			}
			defs[typeID] = def
		}
		v, ok := def.ResolveVersion(deploy.Str(s.StepDefinitionVersionID), s.StepDefinitionVersionNo)
		if !ok {
			return fmt.Sprintf("step definition %q has no such version", def.Name), nil
		}
		var reasons []string
		if _, ok := reg.Lookup(typeID); !ok {
			if _, _, script := stepdefs.ScriptOptions(v); !script {
				reasons = append(reasons, fmt.Sprintf("this agent has no implementation of %q for this platform or boot phase", def.Name))
			}
		}
		for _, o := range v.Options {
			if o.Required && requiredEmpty(&o, s, vars) {
				reasons = append(reasons, fmt.Sprintf("required option %s is empty", o.Name))
			}
		}
		keys := make([]string, 0, len(s.ContentItems))
		for k := range s.ContentItems {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, r := range deploy.ContentList(vars.Expand(s.ContentItems[k])) {
				if strings.Contains(r, "%") {
					continue // a variable only the run sets
				}
				ref, err := deploy.ParseRef(r)
				if err != nil {
					reasons = append(reasons, fmt.Sprintf("content option %s: %s", k, deploy.ErrorMessage(err)))
					continue
				}
				if stepdefs.IsDeployRContent(ref.ID) {
					// The fetcher skips DeployR's scripts (IsDeployRBuiltinContent).
					if why := stepdefs.DeployRContentReason(typeID, def.Name); why != "" && !slices.Contains(reasons, why) {
						reasons = append(reasons, why)
					}
					continue
				}
				if _, err := a.Client.ContentInfo(ctx, ref.ID, ref.VersionNo); err != nil {
					reasons = append(reasons, fmt.Sprintf("content %s unresolved: %s", ref, deploy.ErrorMessage(err)))
				}
			}
		}
		return strings.Join(reasons, "; "), nil
	}
}

// requiredEmpty reports whether required option o has no value for s
// after expansion, its default included.
func requiredEmpty(o *deploy.Option, s *deploy.Step, vars *sequence.Vars) bool {
	src := s.Settings
	if o.IsContent() {
		src = s.ContentItems
	}
	val := ""
	for k, v := range src {
		if strings.EqualFold(k, o.Name) {
			val = vars.Expand(v)
		}
	}
	empty := func(v string) bool {
		return strings.TrimSpace(v) == "" || (o.IsContent() && len(deploy.ContentList(v)) == 0)
	}
	if empty(val) {
		val = vars.Expand(deploy.Str(o.DefaultValue))
	}
	return empty(val)
}

// notOfferedHint explains why a named sequence may be missing from what the
// server offers: only Active versions are, and the server does not tell a
// machine which others exist.
const notOfferedHint = "machines are offered Active versions only: a version that is In_Development (or Deprecated) is not offered; " +
	"to run it for testing, set it Active on the server with `imprint ts status ID VERSION Active`"
