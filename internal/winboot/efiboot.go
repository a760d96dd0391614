package winboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf16"
)

// EFIGlobal is the EFI global variable vendor GUID (Boot####, BootOrder).
const EFIGlobal = "8be4df61-93ca-11d2-aa0d-00e098032b8c"

// Variable attributes: non-volatile, boot-service and runtime access.
const efiAttrNVBSRT = 0x7

// LoadOption encodes an EFI_LOAD_OPTION (UEFI spec "Load Options"; §3.9)
// that starts file (a backslash path on the ESP) from GPT partition p:
// attributes ACTIVE, the description, a device path of a hard-drive node
// naming p by number, start, size and GUID, a file-path node and the end
// node, then optional data.
func LoadOption(description string, p GPTPartition, file string, optional []byte) []byte {
	le := binary.LittleEndian
	var dp []byte
	// Hard drive media device path: type 4, subtype 1, length 42.
	hd := make([]byte, 42)
	hd[0], hd[1] = 4, 1
	le.PutUint16(hd[2:], 42)
	le.PutUint32(hd[4:], uint32(p.Number))
	// The node counts in the disk's logical blocks.
	le.PutUint64(hd[8:], p.FirstLBA)
	le.PutUint64(hd[16:], p.LastLBA-p.FirstLBA+1)
	copy(hd[24:], p.ID[:])
	hd[40], hd[41] = 2, 2 // GPT partition format, GUID signature
	dp = append(dp, hd...)
	// File path media device path: type 4, subtype 4.
	path := utf16z(file)
	fp := make([]byte, 4, 4+len(path))
	fp[0], fp[1] = 4, 4
	le.PutUint16(fp[2:], uint16(4+len(path)))
	dp = append(append(dp, fp...), path...)
	dp = append(dp, 0x7f, 0xff, 4, 0) // end of the whole device path

	out := make([]byte, 6)
	le.PutUint32(out, 1) // LOAD_OPTION_ACTIVE
	le.PutUint16(out[4:], uint16(len(dp)))
	out = append(out, utf16z(description)...)
	out = append(out, dp...)
	return append(out, optional...)
}

func utf16z(s string) []byte {
	u := utf16.Encode([]rune(s + "\x00"))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// EFIVars reads and writes EFI global variables by name ("Boot0001",
// "BootOrder"). The firmware is a boundary we do not own; EFIVarFS is the
// Linux implementation.
type EFIVars interface {
	// Get returns the variable's data (without attributes); an error
	// wrapping fs.ErrNotExist when it is not set.
	Get(name string) ([]byte, error)
	Set(name string, data []byte) error
	// Names lists the global variables set.
	Names() ([]string, error)
}

// EFIVarFS is efivarfs mounted at a directory (/sys/firmware/efi/efivars):
// one file per variable, NAME-VENDORGUID, holding a 4-byte attribute word
// and the data.
type EFIVarFS struct {
	Dir string
	// Mutable clears the immutable flag Linux sets on existing variables'
	// files before they are rewritten (nil: none, as on a plain directory).
	Mutable func(path string) error
}

func (e EFIVarFS) path(name string) string { return filepath.Join(e.Dir, name+"-"+EFIGlobal) }

// Get reads a variable.
func (e EFIVarFS) Get(name string) ([]byte, error) {
	b, err := os.ReadFile(e.path(name))
	if err != nil {
		return nil, err
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("efivar %s: %d bytes, no attributes", name, len(b))
	}
	return b[4:], nil
}

// Set writes a variable (non-volatile, boot and runtime access) in one
// write, as efivarfs requires.
func (e EFIVarFS) Set(name string, data []byte) error {
	p := e.path(name)
	if _, err := os.Stat(p); err == nil && e.Mutable != nil {
		if err := e.Mutable(p); err != nil {
			return fmt.Errorf("efivar %s: %w", name, err)
		}
	}
	buf := binary.LittleEndian.AppendUint32(nil, efiAttrNVBSRT)
	buf = append(buf, data...)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("efivar %s: %w", name, err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("efivar %s: %w", name, err)
	}
	return f.Close()
}

// Names lists the global variables.
func (e EFIVarFS) Names() ([]string, error) {
	ents, err := os.ReadDir(e.Dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, en := range ents {
		if n, ok := strings.CutSuffix(en.Name(), "-"+EFIGlobal); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// AddBootEntry makes option a firmware boot entry and puts it first in
// BootOrder, like `efibootmgr -c`. An existing entry with the same bytes is
// reused (running Prepare twice adds nothing); otherwise the lowest free
// Boot#### number is taken. It returns the entry's number.
func AddBootEntry(v EFIVars, option []byte) (uint16, error) {
	names, err := v.Names()
	if err != nil {
		return 0, fmt.Errorf("list efi variables: %w", err)
	}
	used := map[uint16]bool{}
	num, found := uint16(0), false
	for _, n := range names {
		var x uint16
		if len(n) != 8 || !strings.HasPrefix(n, "Boot") {
			continue
		}
		if _, err := fmt.Sscanf(n[4:], "%04X", &x); err != nil {
			continue
		}
		used[x] = true
		if b, err := v.Get(n); err == nil && bytes.Equal(b, option) && !found {
			num, found = x, true
		}
	}
	if !found {
		for used[num] {
			if num == 0xFFFF {
				return 0, errors.New("no free Boot#### variable")
			}
			num++
		}
		if err := v.Set(fmt.Sprintf("Boot%04X", num), option); err != nil {
			return 0, err
		}
	}
	order, err := v.Get("BootOrder")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("read BootOrder: %w", err)
	}
	var nums []uint16
	for i := 0; i+1 < len(order); i += 2 {
		if x := binary.LittleEndian.Uint16(order[i:]); x != num {
			nums = append(nums, x)
		}
	}
	nums = slices.Insert(nums, 0, num)
	var b []byte
	for _, x := range nums {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	if !bytes.Equal(b, order) {
		if err := v.Set("BootOrder", b); err != nil {
			return 0, err
		}
	}
	return num, nil
}
