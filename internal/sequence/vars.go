package sequence

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Redacted replaces a secret value in any text the engine prints.
const Redacted = "********"

// Vars is a task-sequence environment: string variables whose names are
// case-insensitive (the first spelling seen is kept for display).
//
//   - Names that begin with "_" are read-only: only the engine sets them,
//     through SetInternal. Set and Delete refuse them.
//   - Secret variables (SetSecret) keep their value but are never printed by
//     String or by the engine's log writers: Redact replaces their values in
//     any text with Redacted.
//   - List variables follow DeployR's TSENVLIST / ConfigMgr convention: the
//     items of list "Applications" are the ordinary variables
//     Applications001, Applications002, … (three digits, more when the list
//     has more than 999 items). List reads them back until the first gap.
//
// A Vars is safe for concurrent use. The zero value is not usable; call
// NewVars.
type Vars struct {
	mu sync.Mutex
	m  map[string]*variable // key: lower-case name
}

type variable struct {
	name   string
	value  string
	secret bool
}

// NewVars returns an empty environment.
func NewVars() *Vars { return &Vars{m: make(map[string]*variable)} }

// VarsFrom returns an environment holding the given (non-secret) values.
// Read-only names are allowed: the caller is seeding the engine.
func VarsFrom(values map[string]string) *Vars {
	v := NewVars()
	for name, val := range values {
		v.SetInternal(name, val)
	}
	return v
}

// IsReadOnly reports whether name is reserved for the engine (starts with "_").
func IsReadOnly(name string) bool { return strings.HasPrefix(name, "_") }

func checkName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("variable name is empty")
	case strings.ContainsAny(name, "%\x00\r\n"):
		return fmt.Errorf("variable name %q contains %%, NUL or a line break", name)
	}
	return nil
}

// Get returns the value of name and whether it is set.
func (v *Vars) Get(name string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[strings.ToLower(name)]
	if !ok {
		return "", false
	}
	return e.value, true
}

// Value returns the value of name, or "" when it is not set.
func (v *Vars) Value(name string) string {
	s, _ := v.Get(name)
	return s
}

// Set sets a variable. Names starting with "_" are read-only and give an
// error. Setting an existing secret keeps it secret.
func (v *Vars) Set(name, value string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if IsReadOnly(name) {
		return fmt.Errorf("variable %q is read-only: names starting with _ are set by the engine only", name)
	}
	v.set(name, value, false)
	return nil
}

// SetSecret sets a variable and marks it secret.
func (v *Vars) SetSecret(name, value string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if IsReadOnly(name) {
		return fmt.Errorf("variable %q is read-only: names starting with _ are set by the engine only", name)
	}
	v.set(name, value, true)
	return nil
}

// SetInternal sets a variable without the read-only check. It is for the
// engine and for the code that seeds a run (inventory, _CONTENT-*).
// Invalid names are ignored.
func (v *Vars) SetInternal(name, value string) {
	if checkName(name) != nil {
		return
	}
	v.set(name, value, false)
}

// SetInternalSecret is SetInternal for a secret value.
func (v *Vars) SetInternalSecret(name, value string) {
	if checkName(name) != nil {
		return
	}
	v.set(name, value, true)
}

func (v *Vars) set(name, value string, secret bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	key := strings.ToLower(name)
	if e, ok := v.m[key]; ok {
		e.value = value
		e.secret = e.secret || secret
		return
	}
	v.m[key] = &variable{name: name, value: value, secret: secret}
}

// Delete removes a variable; deleting one that is not set is not an error.
// Read-only names give an error.
func (v *Vars) Delete(name string) error {
	if IsReadOnly(name) {
		return fmt.Errorf("variable %q is read-only: names starting with _ are set by the engine only", name)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, strings.ToLower(name))
	return nil
}

// IsSecret reports whether name is set and secret.
func (v *Vars) IsSecret(name string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[strings.ToLower(name)]
	return ok && e.secret
}

// Names returns the names of all variables, in their first-seen spelling,
// sorted case-insensitively.
func (v *Vars) Names() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	keys := make([]string, 0, len(v.m))
	for k := range v.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = v.m[k].name
	}
	return names
}

// listItemName is the variable holding item i (0-based) of list name.
func listItemName(name string, i int) string { return fmt.Sprintf("%s%03d", name, i+1) }

// SetList replaces list name with items, stored as name001, name002, …
// Items of a longer previous list are deleted.
func (v *Vars) SetList(name string, items []string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if IsReadOnly(name) {
		return fmt.Errorf("list variable %q is read-only: names starting with _ are set by the engine only", name)
	}
	old := len(v.List(name))
	for i, it := range items {
		v.set(listItemName(name, i), it, false)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := len(items); i < old; i++ {
		delete(v.m, strings.ToLower(listItemName(name, i)))
	}
	return nil
}

// List returns the items of list name: name001, name002, … up to the first
// one that is not set. An unset list is empty (nil).
func (v *Vars) List(name string) []string {
	var items []string
	for i := 0; ; i++ {
		s, ok := v.Get(listItemName(name, i))
		if !ok {
			return items
		}
		items = append(items, s)
	}
}

// Expand replaces every %NAME% in s with the value of NAME (names are
// case-insensitive) in one pass: a substituted value is not expanded again.
// An unknown %NAME% stays as it is, and %% gives a single %.
func (v *Vars) Expand(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		rest := s[i+1:]
		j := strings.IndexByte(rest, '%')
		if j < 0 {
			b.WriteString(s[i:])
			return b.String()
		}
		name := rest[:j]
		if name == "" {
			b.WriteByte('%')
			s = rest[1:]
			continue
		}
		if val, ok := v.Get(name); ok && checkName(name) == nil {
			b.WriteString(val)
			s = rest[j+1:]
			continue
		}
		// Unknown: keep the first % and the text, and let the closing %
		// start the next reference ("50% of %X%").
		b.WriteByte('%')
		b.WriteString(name)
		s = rest[j:]
	}
}

// Redact returns s with every non-empty secret value replaced by Redacted.
// Longer secrets are replaced first so that one secret containing another
// is hidden whole.
func (v *Vars) Redact(s string) string {
	v.mu.Lock()
	var secrets []string
	for _, e := range v.m {
		if e.secret && e.value != "" {
			secrets = append(secrets, e.value)
		}
	}
	v.mu.Unlock()
	if len(secrets) == 0 {
		return s
	}
	sort.Slice(secrets, func(i, j int) bool {
		if len(secrets[i]) != len(secrets[j]) {
			return len(secrets[i]) > len(secrets[j])
		}
		return secrets[i] < secrets[j]
	})
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, Redacted)
	}
	return s
}

// String lists the variables as NAME=value lines, sorted, with secret
// values shown as Redacted.
func (v *Vars) String() string {
	var b strings.Builder
	for _, n := range v.Names() {
		val, _ := v.Get(n)
		if v.IsSecret(n) {
			val = Redacted
		}
		fmt.Fprintf(&b, "%s=%s\n", n, val)
	}
	return b.String()
}

// Var is one variable in a snapshot. Secret values are included (the
// journal needs them to resume) and flagged.
type Var struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
}

// Snapshot returns every variable, sorted by name, secrets included.
func (v *Vars) Snapshot() []Var {
	names := v.Names()
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Var, 0, len(names))
	for _, n := range names {
		e := v.m[strings.ToLower(n)]
		out = append(out, Var{Name: e.name, Value: e.value, Secret: e.secret})
	}
	return out
}

// Restore replaces every variable with those of a snapshot.
func (v *Vars) Restore(snap []Var) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.m = make(map[string]*variable, len(snap))
	for _, s := range snap {
		if checkName(s.Name) != nil {
			continue
		}
		key := strings.ToLower(s.Name)
		if e, ok := v.m[key]; ok {
			e.value, e.secret = s.Value, e.secret || s.Secret
			continue
		}
		v.m[key] = &variable{name: s.Name, value: s.Value, secret: s.Secret}
	}
}

// Map returns a copy of the variables as name → value (secrets included).
func (v *Vars) Map() map[string]string {
	out := make(map[string]string)
	for _, s := range v.Snapshot() {
		out[s.Name] = s.Value
	}
	return out
}
