package winboot

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/imprint-osd/imprint/internal/hive"
)

// Well-known BCD objects (spec/windows-offline.md §3.5).
var (
	BootMgr              = mustGUID("9dea862c-5cdd-4e70-acc1-f32b344d4795")
	MemDiag              = mustGUID("b2721d73-1db4-4c62-bf78-c548a880142d")
	GlobalSettings       = mustGUID("7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e")
	DbgSettings          = mustGUID("4636856e-540f-4170-a130-a84776f4c654")
	EmsSettings          = mustGUID("0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9")
	BadMemory            = mustGUID("5189b25c-5558-4bf2-bca4-289b11bd29e2")
	BootLoaderSettings   = mustGUID("6efb52bf-1766-41db-a6b3-0ee5eff72bd7")
	ResumeLoaderSettings = mustGUID("1afa9c49-16ab-4a5c-901b-212802da9460")
	HypervisorSettings   = mustGUID("7ff607e0-4395-11db-b0de-0800200c9a66")
	RamdiskOptions       = mustGUID("ae5534e0-a924-466c-b836-758539a3ee3a")
)

// BCD object types.
const (
	TypeBootMgr           = 0x10100002
	TypeOSLoader          = 0x10200003
	TypeResume            = 0x10200004
	TypeMemDiag           = 0x10200005
	TypeInheritLibrary    = 0x20100000
	TypeInheritOSLoader   = 0x20200003
	TypeInheritResume     = 0x20200004
	TypeDeviceOptions     = 0x30000000
	elementFormatShift    = 24
	elementFormatMask     = 0xF
	formatDevice          = 1
	formatString          = 2
	formatObject          = 3
	formatObjectList      = 4
	formatInteger         = 5
	formatBoolean         = 6
	formatIntegerList     = 7
	ElemApplicationDevice = 0x11000001
	ElemApplicationPath   = 0x12000002
	ElemDescription       = 0x12000004
	ElemPreferredLocale   = 0x12000005
	ElemInheritedObjects  = 0x14000006
	ElemOSDevice          = 0x21000001
	ElemSystemRoot        = 0x22000002
	ElemDefaultObject     = 0x23000003
	ElemResumeObject      = 0x23000006
	ElemDisplayOrder      = 0x24000001
	ElemToolsDisplayOrder = 0x24000010
	ElemTimeout           = 0x25000004
)

// Element is one BCD element value, in the form its format needs.
type Element struct {
	ID uint32
	// Exactly one of these, matching the id's format (bits 24-27).
	Device  []byte
	String  string
	Objects []GUID // Object: one; ObjectList: any number
	Ints    []uint64
	Bool    *bool
}

func boolp(b bool) *bool { return &b }

// Object is one BCD object.
type Object struct {
	ID       GUID
	Type     uint32
	Elements []Element
}

// value encodes e as the registry value its format uses (§3.4).
func (e Element) value() (uint32, []byte, error) {
	switch (e.ID >> elementFormatShift) & elementFormatMask {
	case formatDevice:
		if len(e.Device) == 0 {
			return 0, nil, fmt.Errorf("bcd: element %08x needs a device", e.ID)
		}
		return hive.Binary, e.Device, nil
	case formatString:
		return hive.SZ, hive.EncodeSZ(e.String), nil
	case formatObject:
		if len(e.Objects) != 1 {
			return 0, nil, fmt.Errorf("bcd: element %08x needs one object", e.ID)
		}
		return hive.SZ, hive.EncodeSZ(e.Objects[0].String()), nil
	case formatObjectList:
		s := make([]string, len(e.Objects))
		for i, g := range e.Objects {
			s[i] = g.String()
		}
		return hive.MultiSZ, hive.EncodeMultiSZ(s...), nil
	case formatInteger:
		if len(e.Ints) != 1 {
			return 0, nil, fmt.Errorf("bcd: element %08x needs one integer", e.ID)
		}
		return hive.Binary, hive.EncodeQWORD(e.Ints[0]), nil
	case formatBoolean:
		if e.Bool == nil {
			return 0, nil, fmt.Errorf("bcd: element %08x needs a boolean", e.ID)
		}
		if *e.Bool {
			return hive.Binary, []byte{1}, nil
		}
		return hive.Binary, []byte{0}, nil
	case formatIntegerList:
		var b []byte
		for _, n := range e.Ints {
			b = binary.LittleEndian.AppendUint64(b, n)
		}
		return hive.Binary, b, nil
	}
	return 0, nil, fmt.Errorf("bcd: element %08x has unknown format", e.ID)
}

// DeviceGPT is the 88-byte BCD device element naming a partition of a GPT
// disk by the disk's and the partition's GUIDs (§3.7: the layout of an
// element Windows 11 wrote).
func DeviceGPT(disk, partition GUID) []byte {
	b := make([]byte, 0x58)
	le := binary.LittleEndian
	le.PutUint32(b[0x10:], 6)    // partition device
	le.PutUint32(b[0x18:], 0x48) // descriptor size
	copy(b[0x20:], partition[:])
	le.PutUint32(b[0x30:], 0) // local hard disk
	le.PutUint32(b[0x34:], 0) // GPT partition style
	copy(b[0x38:], disk[:])
	return b
}

// StoreOptions are the inputs of a UEFI BCD store like `bcdboot /f UEFI`
// makes.
type StoreOptions struct {
	Disk, Windows, ESP GUID // disk GUID, Windows and ESP partition GUIDs
	// Locale is the boot manager's and loader's language ("" is en-US).
	Locale string
	// Description names the Windows entry ("" is "Windows Boot Manager"'s
	// usual entry name, "Windows").
	Description string
	// Rand gives the OS loader's and resume object's random GUIDs (nil is
	// crypto/rand; tests pass a fixed stream for golden output).
	Rand io.Reader
	// Modified is the FILETIME stamped on every key.
	Modified uint64
}

// Store builds the BCD objects of a fresh UEFI store (§3.8) and returns
// them with the loader's GUID.
func Store(o StoreOptions) ([]Object, GUID, error) {
	if o.Disk.IsZero() || o.Windows.IsZero() || o.ESP.IsZero() {
		return nil, GUID{}, fmt.Errorf("bcd: the disk, Windows partition and ESP GUIDs are all needed")
	}
	locale := o.Locale
	if locale == "" {
		locale = "en-US"
	}
	desc := o.Description
	if desc == "" {
		desc = "Windows"
	}
	loader, err := NewGUID(o.Rand)
	if err != nil {
		return nil, GUID{}, err
	}
	resume, err := NewGUID(o.Rand)
	if err != nil {
		return nil, GUID{}, err
	}
	if loader == resume {
		return nil, GUID{}, fmt.Errorf("bcd: the random source gave the loader and resume objects the same GUID")
	}
	win, esp := DeviceGPT(o.Disk, o.Windows), DeviceGPT(o.Disk, o.ESP)
	str := func(id uint32, s string) Element { return Element{ID: id, String: s} }
	objs := func(id uint32, g ...GUID) Element { return Element{ID: id, Objects: g} }
	num := func(id uint32, n ...uint64) Element { return Element{ID: id, Ints: n} }
	flag := func(id uint32, b bool) Element { return Element{ID: id, Bool: boolp(b)} }
	dev := func(id uint32, d []byte) Element { return Element{ID: id, Device: d} }
	return []Object{
		{BootMgr, TypeBootMgr, []Element{
			dev(ElemApplicationDevice, esp), str(ElemApplicationPath, `\EFI\Microsoft\Boot\bootmgfw.efi`),
			str(ElemDescription, "Windows Boot Manager"), str(ElemPreferredLocale, locale),
			objs(ElemInheritedObjects, GlobalSettings), objs(ElemDefaultObject, loader), objs(ElemResumeObject, resume),
			objs(ElemDisplayOrder, loader), objs(ElemToolsDisplayOrder, MemDiag), num(ElemTimeout, 30)}},
		{loader, TypeOSLoader, []Element{
			dev(ElemApplicationDevice, win), str(ElemApplicationPath, `\Windows\system32\winload.efi`),
			str(ElemDescription, desc), str(ElemPreferredLocale, locale), objs(ElemInheritedObjects, BootLoaderSettings),
			flag(0x16000060, true), num(0x17000077, 0x15000075), dev(ElemOSDevice, win), str(ElemSystemRoot, `\Windows`),
			objs(0x23000003, resume), num(0x25000020, 0), num(0x250000c2, 1)}},
		{resume, TypeResume, []Element{
			dev(ElemApplicationDevice, win), str(ElemApplicationPath, `\Windows\system32\winresume.efi`),
			str(ElemDescription, "Windows Resume Application"), str(ElemPreferredLocale, locale),
			objs(ElemInheritedObjects, ResumeLoaderSettings), flag(0x16000060, true), num(0x17000077, 0x15000075),
			dev(0x21000001, win), str(0x22000002, `\hiberfil.sys`), num(0x25000008, 1)}},
		{MemDiag, TypeMemDiag, []Element{
			dev(ElemApplicationDevice, esp), str(ElemApplicationPath, `\EFI\Microsoft\Boot\memtest.efi`),
			str(ElemDescription, "Windows Memory Diagnostic"), str(ElemPreferredLocale, locale),
			objs(ElemInheritedObjects, GlobalSettings), flag(0x1600000b, true)}},
		{GlobalSettings, TypeInheritLibrary, []Element{objs(ElemInheritedObjects, DbgSettings, EmsSettings, BadMemory)}},
		{DbgSettings, TypeInheritLibrary, []Element{num(0x15000011, 4)}},
		{EmsSettings, TypeInheritLibrary, []Element{flag(0x16000020, false)}},
		{BadMemory, TypeInheritLibrary, nil},
		{BootLoaderSettings, TypeInheritOSLoader, []Element{objs(ElemInheritedObjects, GlobalSettings, HypervisorSettings)}},
		{ResumeLoaderSettings, TypeInheritResume, []Element{objs(ElemInheritedObjects, GlobalSettings)}},
		{HypervisorSettings, TypeInheritOSLoader, []Element{num(0x250000f3, 0), num(0x250000f4, 1), num(0x250000f5, 115200)}},
		{RamdiskOptions, TypeDeviceOptions, []Element{str(ElemDescription, "Ramdisk Options")}},
	}, loader, nil
}

// StoreHive lays objects out as a BCD hive (§3.3).
func StoreHive(objects []Object, modified uint64) (*hive.Hive, error) {
	h := hive.New("BCD00000000", modified)
	d, err := h.Root.Create("Description", modified)
	if err != nil {
		return nil, err
	}
	d.SetString("KeyName", "BCD00000000")
	d.SetDWORD("System", 1)
	d.SetDWORD("TreatAsSystem", 1)
	if _, err := h.Root.Create("Objects", modified); err != nil {
		return nil, err
	}
	for _, o := range objects {
		base := `Objects\` + o.ID.String()
		od, err := h.Root.Create(base+`\Description`, modified)
		if err != nil {
			return nil, err
		}
		od.SetDWORD("Type", o.Type)
		if _, err := h.Root.Create(base+`\Elements`, modified); err != nil {
			return nil, err
		}
		for _, e := range o.Elements {
			typ, data, err := e.value()
			if err != nil {
				return nil, fmt.Errorf("object %s: %w", o.ID, err)
			}
			ek, err := h.Root.Create(fmt.Sprintf(`%s\Elements\%08x`, base, e.ID), modified)
			if err != nil {
				return nil, err
			}
			ek.Set("Element", typ, data)
		}
	}
	return h, nil
}

// ElementPath is the hive path of an element value, for readers.
func ElementPath(object GUID, id uint32) string {
	return fmt.Sprintf(`Objects\%s\Elements\%08x`, strings.ToLower(object.String()), id)
}
