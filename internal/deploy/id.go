package deploy

import (
	"net"
	"strings"
)

// IDs are GUIDs (task sequences, content items, step definitions, runs
// and, in DeployR's exports, versions and steps) compared without regard
// to case: DeployR and Windows tools write them in either case and
// sometimes in braces. Imprint keeps one form, the canonical one below,
// and puts every id in it once, where it enters: the HTTP edge for ids in
// a path (ParseID, ParseDeviceID) and the import for ids inside a
// document (NormalizeIDs). The stores and everything behind them compare
// ids as plain strings.

// CanonicalID is the one stored form of an id: surrounding space trimmed,
// one pair of enclosing braces removed ("{…}", as Windows prints a GUID)
// and lowercase. It never fails: ids that need not be GUIDs (a
// hand-written document's "v1" or "step-1") keep their text.
func CanonicalID(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return strings.ToLower(s)
}

// SameID reports whether a and b are one id: equal in canonical form.
// For comparing an id the server holds canonical with one read from a
// stored document, which may predate normalisation on entry (an
// upper-case typeId in a sequence imported before, say); ids both taken
// from the edge compare with ==.
func SameID(a, b string) bool {
	return CanonicalID(a) == CanonicalID(b)
}

// IsGUID reports whether s is a GUID in canonical form: lowercase
// 8-4-4-4-12 hex digits.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// ParseID returns s in canonical form (CanonicalID) and refuses, with
// KindInvalid, one that is not then a GUID. what names the id in the
// message ("task sequence", "content item", "run").
func ParseID(what, s string) (string, error) {
	id := CanonicalID(s)
	if !IsGUID(id) {
		return "", Errorf(KindInvalid, "%s id %q is not a GUID such as 8770d276-96ee-4c2b-b8c4-38d4ad54670c", what, s)
	}
	return id, nil
}

// ParseDeviceID returns a device's key in the form the device table holds
// it (auth.DeviceKey): an SMBIOS UUID as ParseUUID gives it (any case,
// braces or none, dashes or none), or "mac-" and the first MAC address
// in lowercase with dashes. A bare MAC address (52:54:00:12:34:56) names
// the same device as its mac- key. Anything else is KindInvalid.
func ParseDeviceID(s string) (string, error) {
	t := strings.TrimSpace(s)
	if u, err := ParseUUID(t); err == nil {
		return u, nil
	}
	m := t
	if len(m) > 4 && strings.EqualFold(m[:4], "mac-") {
		m = m[4:]
	}
	if hw, err := net.ParseMAC(m); err == nil && len(hw) == 6 {
		return "mac-" + strings.ReplaceAll(hw.String(), ":", "-"), nil
	}
	return "", Errorf(KindInvalid, "device id %q is not a UUID such as 4c4c4544-0042-3010-8052-b4c04f4e4432 or a MAC key such as mac-52-54-00-12-34-56", s)
}

// CanonicalRef puts the id part of a "guid:version" reference in
// canonical form and leaves the version (and a value that is not such a
// reference, such as "" for an unset option) as it is.
func CanonicalRef(s string) string {
	id, no, ok := strings.Cut(s, ":")
	if !ok {
		return canonicalGUID(s)
	}
	if c := CanonicalID(id); IsGUID(c) {
		return c + ":" + strings.TrimSpace(no)
	}
	return s
}

// canonicalGUID is CanonicalID(s) when that is a GUID, else s unchanged:
// for free-text fields that usually hold a GUID but may hold anything.
func canonicalGUID(s string) string {
	if c := CanonicalID(s); IsGUID(c) {
		return c
	}
	return s
}

func canonicalPtr(p *string) {
	if p != nil {
		*p = CanonicalID(*p)
	}
}

// topID puts a document's own id in canonical form: empty stays empty
// (the caller assigns one), anything else must be a GUID.
func topID(what string, id *string) error {
	if *id == "" {
		return nil
	}
	c, err := ParseID(what, *id)
	if err != nil {
		return err
	}
	*id = c
	return nil
}

// isIDSetting reports whether a setting's value is an id: a Run task
// sequence step's child ("guid:version") or a Capture image step's target
// content item. Keys match without case, as DeployR's exports mix it.
func isIDSetting(key string) bool {
	return strings.EqualFold(key, "childTaskSequenceId") || strings.EqualFold(key, "TargetContentItem")
}

// NormalizeIDs puts every id in the task sequence in canonical form: its
// own (which must be a GUID when set), each version's and its
// taskSequenceId, and in every step its id, parent ids, typeId,
// stepDefinitionVersionId, the content references in contentItems and
// the ids in the childTaskSequenceId and TargetContentItem settings.
// Called once where a document enters the server, so that references
// written in another case or in braces resolve.
func (t *TaskSequence) NormalizeIDs() error {
	if err := topID("task sequence", &t.ID); err != nil {
		return err
	}
	for i := range t.Versions {
		v := &t.Versions[i]
		v.ID = CanonicalID(v.ID)
		v.TaskSequenceID = CanonicalID(v.TaskSequenceID)
		normalizeSteps(v.Steps)
	}
	return nil
}

func normalizeSteps(steps []Step) {
	for at := range AllSteps(steps) {
		s := at.Step
		s.ID = CanonicalID(s.ID)
		canonicalPtr(s.TaskSequenceVersionID)
		canonicalPtr(s.GroupID)
		canonicalPtr(s.TypeID)
		canonicalPtr(s.StepDefinitionVersionID)
		for k, v := range s.ContentItems {
			s.ContentItems[k] = CanonicalRef(v)
		}
		for k, v := range s.Settings {
			if isIDSetting(k) {
				s.Settings[k] = CanonicalRef(v)
			}
		}
	}
}

// NormalizeIDs puts the content item's id (a GUID when set), its
// versions' ids and contentItemId, and the references in their
// installationDependencies in canonical form.
func (c *ContentItem) NormalizeIDs() error {
	if err := topID("content item", &c.ID); err != nil {
		return err
	}
	for i := range c.Versions {
		c.Versions[i].NormalizeIDs()
	}
	return nil
}

// NormalizeIDs puts the version's id, contentItemId and the references in
// its installationDependencies in canonical form: for a version added on
// its own to a stored item.
func (v *ContentVersion) NormalizeIDs() {
	v.ID = CanonicalID(v.ID)
	v.ContentItemID = CanonicalID(v.ContentItemID)
	for j, d := range v.InstallationDependencies {
		v.InstallationDependencies[j] = CanonicalRef(d)
	}
}

// NormalizeIDs puts the step definition's id (a GUID when set) and its
// versions' ids and stepDefinitionId in canonical form.
func (d *StepDefinition) NormalizeIDs() error {
	if err := topID("step definition", &d.ID); err != nil {
		return err
	}
	for i := range d.Versions {
		v := &d.Versions[i]
		v.ID = CanonicalID(v.ID)
		v.StepDefinitionID = CanonicalID(v.StepDefinitionID)
	}
	return nil
}
