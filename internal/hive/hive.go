// Package hive reads and writes Windows registry hive files (the "regf"
// format of Windows\System32\config\SYSTEM, SOFTWARE and of a BCD store) in
// pure Go, so the static agent in the boot image can make a BCD store and
// edit an applied image's hives without hivex or any Windows tool.
//
// A hive is held as a tree of keys in memory: Parse reads a whole file,
// Marshal writes the whole tree as a new, compact file (every key, value,
// class name and security descriptor kept; free space and unreferenced
// cells dropped). Editing is therefore "read, change the tree, write it all
// back", which is simple and deterministic: the same tree always gives the
// same bytes.
//
// Parse refuses a hive that was not closed cleanly (its two sequence
// numbers differ): its latest changes may sit in the .LOG1/.LOG2
// transaction logs, which this package, like hivex, does not replay.
//
// The format facts come from the public regf descriptions (Joachim Metz's
// libregf documentation and the hivex sources, read for facts only); the
// tests check every file written here with hivex, an independent reader.
package hive

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

// Registry value types.
const (
	None     uint32 = 0
	SZ       uint32 = 1
	ExpandSZ uint32 = 2
	Binary   uint32 = 3
	DWORD    uint32 = 4
	MultiSZ  uint32 = 7
	QWORD    uint32 = 11
)

// Value is one registry value. Name "" is the key's default value.
type Value struct {
	Name string
	Type uint32
	Data []byte
}

// String decodes a REG_SZ or REG_EXPAND_SZ value (UTF-16LE, NUL-terminated).
func (v Value) String() string { return decodeUTF16(v.Data) }

// Strings decodes a REG_MULTI_SZ value.
func (v Value) Strings() []string {
	s := decodeUTF16Raw(v.Data)
	var out []string
	for _, p := range strings.Split(s, "\x00") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Uint32 decodes a REG_DWORD value (0 when too short).
func (v Value) Uint32() uint32 {
	if len(v.Data) < 4 {
		return 0
	}
	return binary.LittleEndian.Uint32(v.Data)
}

// Key is one registry key.
type Key struct {
	Name string
	// Class is the key's class name (rarely set; kept when read).
	Class string
	// Modified is the last-write time as a Windows FILETIME.
	Modified uint64
	// Security is the key's self-relative security descriptor; nil on a
	// new key means "the parent's" (as hivex and Windows do).
	Security []byte
	Values   []Value
	Subkeys  []*Key
	// flags are the nk flags read from a file, minus the name-encoding
	// and root bits that Marshal recomputes (e.g. KEY_SYM_LINK stays).
	flags uint16
	// access is the nk "access bits" field of format 1.5, kept as read.
	access uint32
}

// Hive is a whole hive file.
type Hive struct {
	Root *Key
	// Minor is the format's minor version (3 for new hives; kept when read).
	Minor uint32
	// Modified is the header's last-written FILETIME.
	Modified uint64
	// FileName is the header's embedded file name (informational).
	FileName string
	// header holds base-block bytes 112-507 of a parsed file (format 1.5
	// fields such as the resource manager and log ids), written back as read.
	header []byte
}

// DefaultSecurity is the security descriptor of a new hive's root key:
// owner Administrators, group SYSTEM, full control for Administrators and
// SYSTEM, inherited by subkeys.
func DefaultSecurity() []byte {
	sidBA := []byte{1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0} // S-1-5-32-544
	sidSY := []byte{1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0}                // S-1-5-18
	ace := func(sid []byte) []byte {
		b := make([]byte, 8, 8+len(sid))
		b[0] = 0    // ACCESS_ALLOWED_ACE_TYPE
		b[1] = 0x02 // CONTAINER_INHERIT_ACE
		binary.LittleEndian.PutUint16(b[2:], uint16(8+len(sid)))
		binary.LittleEndian.PutUint32(b[4:], 0x000F003F) // KEY_ALL_ACCESS
		return append(b, sid...)
	}
	aces := append(ace(sidBA), ace(sidSY)...)
	acl := make([]byte, 8, 8+len(aces))
	acl[0] = 2 // ACL_REVISION
	binary.LittleEndian.PutUint16(acl[2:], uint16(8+len(aces)))
	binary.LittleEndian.PutUint16(acl[4:], 2)
	acl = append(acl, aces...)
	sd := make([]byte, 20)
	sd[0] = 1 // revision
	// SE_SELF_RELATIVE | SE_DACL_PRESENT
	binary.LittleEndian.PutUint16(sd[2:], 0x8004)
	owner := 20
	group := owner + len(sidBA)
	dacl := group + len(sidSY)
	binary.LittleEndian.PutUint32(sd[4:], uint32(owner))
	binary.LittleEndian.PutUint32(sd[8:], uint32(group))
	binary.LittleEndian.PutUint32(sd[16:], uint32(dacl))
	sd = append(sd, sidBA...)
	sd = append(sd, sidSY...)
	return append(sd, acl...)
}

// New returns a hive holding only a root key named rootName, with
// DefaultSecurity, and modified time filetime.
func New(rootName string, filetime uint64) *Hive {
	return &Hive{Root: &Key{Name: rootName, Modified: filetime, Security: DefaultSecurity()}, Minor: 3, Modified: filetime}
}

// Subkey returns the direct subkey called name (case-insensitive) or nil.
func (k *Key) Subkey(name string) *Key {
	for _, s := range k.Subkeys {
		if strings.EqualFold(s.Name, name) {
			return s
		}
	}
	return nil
}

// Lookup follows a backslash-separated path from k (case-insensitive);
// nil when a part is missing. "" is k itself.
func (k *Key) Lookup(path string) *Key {
	cur := k
	for _, p := range splitPath(path) {
		if cur = cur.Subkey(p); cur == nil {
			return nil
		}
	}
	return cur
}

// Create returns the key at path under k, making the missing keys (with
// modified time filetime). New keys take their security from their parent
// when Marshal writes them.
func (k *Key) Create(path string, filetime uint64) (*Key, error) {
	cur := k
	for _, p := range splitPath(path) {
		if err := checkName(p); err != nil {
			return nil, err
		}
		next := cur.Subkey(p)
		if next == nil {
			next = &Key{Name: p, Modified: filetime}
			cur.Subkeys = append(cur.Subkeys, next)
		}
		cur = next
	}
	return cur, nil
}

// Delete removes the direct subkey called name and its subtree; false
// when there is none.
func (k *Key) Delete(name string) bool {
	for i, s := range k.Subkeys {
		if strings.EqualFold(s.Name, name) {
			k.Subkeys = append(k.Subkeys[:i], k.Subkeys[i+1:]...)
			return true
		}
	}
	return false
}

// Value returns the value called name (case-insensitive).
func (k *Key) Value(name string) (Value, bool) {
	for _, v := range k.Values {
		if strings.EqualFold(v.Name, name) {
			return v, true
		}
	}
	return Value{}, false
}

// Set sets (adds or replaces) the value called name.
func (k *Key) Set(name string, typ uint32, data []byte) {
	for i, v := range k.Values {
		if strings.EqualFold(v.Name, name) {
			k.Values[i] = Value{Name: v.Name, Type: typ, Data: data}
			return
		}
	}
	k.Values = append(k.Values, Value{Name: name, Type: typ, Data: data})
}

// SetString sets a REG_SZ value.
func (k *Key) SetString(name, s string) { k.Set(name, SZ, EncodeSZ(s)) }

// SetDWORD sets a REG_DWORD value.
func (k *Key) SetDWORD(name string, n uint32) { k.Set(name, DWORD, EncodeDWORD(n)) }

func splitPath(path string) []string {
	var out []string
	for _, p := range strings.Split(path, `\`) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkName(name string) error {
	if name == "" || len(utf16.Encode([]rune(name))) > 255 || strings.ContainsRune(name, '\\') {
		return fmt.Errorf("hive: key name %q is empty, has a backslash or is longer than 255 characters", name)
	}
	return nil
}

// EncodeSZ encodes s as REG_SZ data: UTF-16LE with a terminating NUL.
func EncodeSZ(s string) []byte { return utf16LE(s + "\x00") }

// EncodeMultiSZ encodes REG_MULTI_SZ data: each string NUL-terminated,
// then one more NUL.
func EncodeMultiSZ(ss ...string) []byte {
	var sb strings.Builder
	for _, s := range ss {
		sb.WriteString(s)
		sb.WriteByte(0)
	}
	sb.WriteByte(0)
	return utf16LE(sb.String())
}

// EncodeDWORD encodes REG_DWORD data (little-endian).
func EncodeDWORD(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }

// EncodeQWORD encodes 8-byte little-endian data (REG_QWORD, and the BCD
// integer format stored as REG_BINARY).
func EncodeQWORD(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

func utf16LE(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func decodeUTF16Raw(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func decodeUTF16(b []byte) string {
	s := decodeUTF16Raw(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

// nameLess orders subkey names as Windows sorts them in a subkey list:
// by their upper-cased UTF-16 code units.
func nameLess(a, b string) bool {
	ua, ub := utf16.Encode([]rune(strings.ToUpper(a))), utf16.Encode([]rune(strings.ToUpper(b)))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

func sortedSubkeys(k *Key) ([]*Key, error) {
	s := append([]*Key(nil), k.Subkeys...)
	sort.SliceStable(s, func(i, j int) bool { return nameLess(s[i].Name, s[j].Name) })
	for i := 1; i < len(s); i++ {
		if strings.EqualFold(s[i-1].Name, s[i].Name) {
			return nil, fmt.Errorf("hive: key %q has two subkeys named %q", k.Name, s[i].Name)
		}
	}
	return s, nil
}

func upper(s string) string { return strings.ToUpper(s) }
