package windrivers

import (
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Pack is one version of a DriverPack content item as the machine API
// lists it for Inject drivers: the version's Manufacturer and Model are
// what the machine's make and model aliases are matched against.
type Pack struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	VersionNo    int           `json:"versionNo"`
	Status       deploy.Status `json:"status"`
	Manufacturer string        `json:"driverManufacturer"`
	Model        string        `json:"driverModel"`
}

// Ref is the pack's content reference.
func (p Pack) Ref() deploy.Ref { return deploy.Ref{ID: p.ID, VersionNo: p.VersionNo} }

// Machine is what gather found: the SMBIOS make and model and DeployR's
// aliases of them (agent.Aliases).
type Machine struct {
	Make, Model                        string
	MakeAlias, ModelAlias, SystemAlias string
}

// Match is the pack Inject drivers chose and why.
type Match struct {
	Pack Pack
	// Rule names the pair of machine values that matched the version's
	// Manufacturer and Model, e.g. "MAKEALIAS+MODELALIAS".
	Rule string
}

// MatchPack applies DeployR's Inject drivers rule (spec/deployr.md §5.2):
// the machine's (MAKEALIAS, MODELALIAS), then (MAKE, MODEL), then (MAKE,
// SYSTEMALIAS), then (MAKEALIAS, SYSTEMALIAS) are compared, ignoring
// case, with each version's Manufacturer and Model; the pairs are tried
// first over the Active versions and then over the In_Development ones.
// A task sequence that is itself In_Development considers only
// In_Development packs. Deprecated versions are never chosen. Among
// versions matching the same pair in the same pass the highest version
// wins (the newest pack for the model). ok is false when nothing matches.
func MatchPack(packs []Pack, m Machine, tsInDevelopment bool) (Match, bool) {
	rules := []struct {
		name        string
		make, model string
	}{
		{"MAKEALIAS+MODELALIAS", m.MakeAlias, m.ModelAlias},
		{"MAKE+MODEL", m.Make, m.Model},
		{"MAKE+SYSTEMALIAS", m.Make, m.SystemAlias},
		{"MAKEALIAS+SYSTEMALIAS", m.MakeAlias, m.SystemAlias},
	}
	passes := []deploy.Status{deploy.StatusActive, deploy.StatusInDevelopment}
	if tsInDevelopment {
		passes = []deploy.Status{deploy.StatusInDevelopment}
	}
	for _, status := range passes {
		for _, r := range rules {
			mk, md := strings.TrimSpace(r.make), strings.TrimSpace(r.model)
			if mk == "" || md == "" {
				continue // an empty value matches nothing, not an empty field
			}
			var best *Pack
			for i := range packs {
				p := &packs[i]
				if p.Status != status {
					continue
				}
				if !strings.EqualFold(strings.TrimSpace(p.Manufacturer), mk) || !strings.EqualFold(strings.TrimSpace(p.Model), md) {
					continue
				}
				if best == nil || p.VersionNo > best.VersionNo || (p.VersionNo == best.VersionNo && p.ID < best.ID) {
					best = p
				}
			}
			if best != nil {
				return Match{Pack: *best, Rule: r.name}, true
			}
		}
	}
	return Match{}, false
}
