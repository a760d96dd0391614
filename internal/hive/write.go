package hive

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

const (
	baseBlockSize = 4096
	binHeaderSize = 32
	binUnit       = 4096
	bigDataMax    = 16344 // largest data cell before "db" big data (minor >= 4)
	subkeyLeafMax = 512   // entries per lh leaf; more go through an ri index

	nkCompName  = 0x0020
	nkHiveEntry = 0x0004
	nkNoDelete  = 0x0008
	vkCompName  = 0x0001
	noCell      = 0xFFFFFFFF
)

// Marshal writes the hive as a new regf file: a clean base block
// (both sequence numbers equal, checksum set) followed by hive bins.
func (h *Hive) Marshal() ([]byte, error) {
	if h.Root == nil {
		return nil, fmt.Errorf("hive: no root key")
	}
	if h.Root.Security == nil {
		h.Root.Security = DefaultSecurity()
	}
	w := &writer{minor: h.Minor}
	if w.minor == 0 {
		w.minor = 3
	}
	w.newBin(0)
	// Security descriptors first: each distinct one once, in a circular
	// list, with the number of keys using it.
	w.sk = map[string]uint32{}
	if err := w.collectSecurity(h.Root, h.Root.Security, 0); err != nil {
		return nil, err
	}
	for i, sd := range w.sdOrder {
		w.skOffs = append(w.skOffs, w.alloc(20+len(sd)))
		w.sk[string(sd)] = w.skOffs[i]
	}
	for i, sd := range w.sdOrder {
		c := w.cell(w.skOffs[i])
		copy(c, "sk")
		n := len(w.skOffs)
		binary.LittleEndian.PutUint32(c[4:], w.skOffs[(i+1)%n])   // flink
		binary.LittleEndian.PutUint32(c[8:], w.skOffs[(i+n-1)%n]) // blink
		binary.LittleEndian.PutUint32(c[12:], w.skRefs[string(sd)])
		binary.LittleEndian.PutUint32(c[16:], uint32(len(sd)))
		copy(c[20:], sd)
	}
	root, err := w.writeKey(h.Root, h.Root.Security, 0, true)
	if err != nil {
		return nil, err
	}
	w.closeBin()

	out := make([]byte, baseBlockSize, baseBlockSize+len(w.buf))
	copy(out, "regf")
	le := binary.LittleEndian
	le.PutUint32(out[4:], 1) // primary sequence
	le.PutUint32(out[8:], 1) // secondary sequence: equal means clean
	le.PutUint64(out[12:], h.Modified)
	le.PutUint32(out[20:], 1) // major
	le.PutUint32(out[24:], w.minor)
	le.PutUint32(out[28:], 0) // primary file
	le.PutUint32(out[32:], 1) // direct memory load
	le.PutUint32(out[36:], root)
	le.PutUint32(out[40:], uint32(len(w.buf)))
	le.PutUint32(out[44:], 1) // clustering factor
	copy(out[112:508], h.header)
	name := utf16.Encode([]rune(h.FileName))
	for i := 0; i < len(name) && i < 31; i++ {
		le.PutUint16(out[48+2*i:], name[i])
	}
	le.PutUint32(out[508:], headerChecksum(out))
	return append(out, w.buf...), nil
}

// headerChecksum is the XOR of the base block's first 127 dwords, with 0
// and 0xFFFFFFFF (which mean "not computed") moved aside.
func headerChecksum(b []byte) uint32 {
	var x uint32
	for i := 0; i < 508; i += 4 {
		x ^= binary.LittleEndian.Uint32(b[i:])
	}
	switch x {
	case 0xFFFFFFFF:
		return 0xFFFFFFFE
	case 0:
		return 1
	}
	return x
}

type writer struct {
	buf           []byte // hive bins; offsets are relative to its start
	binStart, pos int
	minor         uint32
	sdOrder       [][]byte          // distinct security descriptors, root's first
	sk            map[string]uint32 // descriptor -> its sk cell
	skRefs        map[string]uint32 // descriptor -> keys using it
	skOffs        []uint32
}

func (w *writer) newBin(need int) {
	size := binUnit
	for size < need+binHeaderSize {
		size += binUnit
	}
	w.binStart = len(w.buf)
	if len(w.buf)+size > cap(w.buf) {
		// Double: append's growth for big slices (1.25x) copies a hive of
		// tens of megabytes many times over.
		grown := make([]byte, len(w.buf), max(2*cap(w.buf), len(w.buf)+size, 1<<20))
		copy(grown, w.buf)
		w.buf = grown
	}
	w.buf = w.buf[:len(w.buf)+size] // fresh capacity is zeroed
	b := w.buf[w.binStart:]
	copy(b, "hbin")
	binary.LittleEndian.PutUint32(b[4:], uint32(w.binStart))
	binary.LittleEndian.PutUint32(b[8:], uint32(size))
	w.pos = w.binStart + binHeaderSize
}

// closeBin marks the rest of the current bin as one free cell.
func (w *writer) closeBin() {
	if rest := len(w.buf) - w.pos; rest > 0 {
		binary.LittleEndian.PutUint32(w.buf[w.pos:], uint32(rest))
		w.pos = len(w.buf)
	}
}

// alloc reserves an allocated cell for n data bytes and returns its offset.
func (w *writer) alloc(n int) uint32 {
	size := (4 + n + 7) &^ 7
	if w.pos+size > len(w.buf) {
		w.closeBin()
		w.newBin(size)
	}
	off := w.pos
	binary.LittleEndian.PutUint32(w.buf[off:], uint32(-int32(size)))
	w.pos += size
	return uint32(off)
}

// cell is the data part of the cell at off.
func (w *writer) cell(off uint32) []byte {
	size := -int32(binary.LittleEndian.Uint32(w.buf[off:]))
	return w.buf[int(off)+4 : int(off)+int(size)]
}

// maxDepth bounds the key tree (Windows allows 512 levels).
const maxDepth = 512

func (w *writer) collectSecurity(k *Key, parentSD []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("hive: keys nested deeper than %d levels", maxDepth)
	}
	sd := k.Security
	if sd == nil {
		sd = parentSD
	}
	if w.skRefs == nil {
		w.skRefs = map[string]uint32{}
	}
	if _, ok := w.skRefs[string(sd)]; !ok {
		w.sdOrder = append(w.sdOrder, sd)
	}
	w.skRefs[string(sd)]++
	for _, s := range k.Subkeys {
		if err := w.collectSecurity(s, sd, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// writeKey writes k and its subtree and returns k's nk cell.
func (w *writer) writeKey(k *Key, parentSD []byte, parent uint32, root bool) (uint32, error) {
	le := binary.LittleEndian
	if err := checkName(k.Name); err != nil {
		return 0, err
	}
	sd := k.Security
	if sd == nil {
		sd = parentSD
	}
	name, comp := encodeName(k.Name)
	nk := w.alloc(76 + len(name))
	flags := k.flags &^ (nkCompName | nkHiveEntry | nkNoDelete)
	if comp {
		flags |= nkCompName
	}
	if root {
		flags |= nkHiveEntry | nkNoDelete
	}
	classOff, classLen := uint32(noCell), 0
	if k.Class != "" {
		cb := utf16LE(k.Class)
		classOff, classLen = w.data(cb), len(cb)
	}
	valList, maxValName, maxValData := uint32(noCell), 0, 0
	if len(k.Values) > 0 {
		seen := map[string]bool{}
		offs := make([]uint32, len(k.Values))
		for i, v := range k.Values {
			if seen[upper(v.Name)] {
				return 0, fmt.Errorf("hive: key %q has two values named %q", k.Name, v.Name)
			}
			seen[upper(v.Name)] = true
			vn, vcomp := encodeName(v.Name)
			vk := w.alloc(20 + len(vn))
			var dataField, sizeField uint32
			if len(v.Data) <= 4 {
				var inline [4]byte
				copy(inline[:], v.Data)
				dataField = le.Uint32(inline[:])
				sizeField = uint32(len(v.Data)) | 0x80000000
			} else {
				dataField, sizeField = w.data(v.Data), uint32(len(v.Data))
			}
			c := w.cell(vk)
			copy(c, "vk")
			le.PutUint16(c[2:], uint16(len(vn)))
			le.PutUint32(c[4:], sizeField)
			le.PutUint32(c[8:], dataField)
			le.PutUint32(c[12:], v.Type)
			if vcomp && v.Name != "" {
				le.PutUint16(c[16:], vkCompName)
			}
			copy(c[20:], vn)
			offs[i] = vk
			maxValName = max(maxValName, 2*len(utf16.Encode([]rune(v.Name))))
			maxValData = max(maxValData, len(v.Data))
		}
		valList = w.alloc(4 * len(offs))
		for i, o := range offs {
			le.PutUint32(w.cell(valList)[4*i:], o)
		}
	}
	subs, err := sortedSubkeys(k)
	if err != nil {
		return 0, err
	}
	subList, maxSubName, maxSubClass := uint32(noCell), 0, 0
	if len(subs) > 0 {
		offs := make([]uint32, len(subs))
		for i, s := range subs {
			if offs[i], err = w.writeKey(s, sd, nk, false); err != nil {
				return 0, err
			}
			maxSubName = max(maxSubName, 2*len(utf16.Encode([]rune(s.Name))))
			maxSubClass = max(maxSubClass, 2*len(utf16.Encode([]rune(s.Class))))
		}
		var leaves []uint32
		for i := 0; i < len(subs); i += subkeyLeafMax {
			j := min(i+subkeyLeafMax, len(subs))
			lh := w.alloc(4 + 8*(j-i))
			c := w.cell(lh)
			copy(c, "lh")
			le.PutUint16(c[2:], uint16(j-i))
			for n := i; n < j; n++ {
				le.PutUint32(c[4+8*(n-i):], offs[n])
				le.PutUint32(c[8+8*(n-i):], lhHash(subs[n].Name))
			}
			leaves = append(leaves, lh)
		}
		subList = leaves[0]
		if len(leaves) > 1 {
			subList = w.alloc(4 + 4*len(leaves))
			c := w.cell(subList)
			copy(c, "ri")
			le.PutUint16(c[2:], uint16(len(leaves)))
			for i, l := range leaves {
				le.PutUint32(c[4+4*i:], l)
			}
		}
	}
	c := w.cell(nk)
	copy(c, "nk")
	le.PutUint16(c[2:], flags)
	le.PutUint64(c[4:], k.Modified)
	le.PutUint32(c[12:], k.access)
	le.PutUint32(c[16:], parent)
	le.PutUint32(c[20:], uint32(len(subs)))
	le.PutUint32(c[28:], subList)
	le.PutUint32(c[32:], noCell) // volatile subkeys: none on disk
	le.PutUint32(c[36:], uint32(len(k.Values)))
	le.PutUint32(c[40:], valList)
	le.PutUint32(c[44:], w.sk[string(sd)])
	le.PutUint32(c[48:], classOff)
	le.PutUint32(c[52:], uint32(maxSubName))
	le.PutUint32(c[56:], uint32(maxSubClass))
	le.PutUint32(c[60:], uint32(maxValName))
	le.PutUint32(c[64:], uint32(maxValData))
	le.PutUint16(c[72:], uint16(len(name)))
	le.PutUint16(c[74:], uint16(classLen))
	copy(c[76:], name)
	return nk, nil
}

func (w *writer) data(b []byte) uint32 {
	if w.minor >= 4 && len(b) > bigDataMax {
		var segs []uint32
		for rest := b; len(rest) > 0; {
			n := min(len(rest), bigDataMax)
			off := w.alloc(n)
			copy(w.cell(off), rest[:n])
			segs = append(segs, off)
			rest = rest[n:]
		}
		list := w.alloc(4 * len(segs))
		for i, s := range segs {
			binary.LittleEndian.PutUint32(w.cell(list)[4*i:], s)
		}
		db := w.alloc(8)
		c := w.cell(db)
		copy(c, "db")
		binary.LittleEndian.PutUint16(c[2:], uint16(len(segs)))
		binary.LittleEndian.PutUint32(c[4:], list)
		return db
	}
	off := w.alloc(len(b))
	copy(w.cell(off), b)
	return off
}

// encodeName gives a name's stored bytes and whether they are the
// compressed (one byte per character, Latin-1) form.
func encodeName(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			return utf16LE(s), false
		}
		b = append(b, byte(r))
	}
	return b, true
}

func lhHash(name string) uint32 {
	var h uint32
	for _, c := range utf16.Encode([]rune(upper(name))) {
		h = h*37 + uint32(c)
	}
	return h
}
