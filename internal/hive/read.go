package hive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// maxKeys bounds how many keys Parse reads, so a corrupt file whose lists
// point back at each other cannot make it loop or explode.
const maxKeys = 4 << 20

// ReadValue reads one value of the key at keyPath (backslash-separated,
// case-insensitive, from the root) without building the whole tree: a
// cheap way to read, say, ProductName from a 100 MB SOFTWARE hive.
func ReadValue(b []byte, keyPath, name string) (Value, error) {
	r, rootOff, err := open(b)
	if err != nil {
		return Value{}, err
	}
	le := binary.LittleEndian
	off := rootOff
	for _, part := range splitPath(keyPath) {
		c, err := r.nk(off)
		if err != nil {
			return Value{}, err
		}
		if le.Uint32(c[20:]) == 0 {
			return Value{}, fmt.Errorf("hive: no key %s", keyPath)
		}
		offs, err := r.subkeyList(le.Uint32(c[28:]), 0)
		if err != nil {
			return Value{}, err
		}
		found := false
		for _, o := range offs {
			sc, err := r.nk(o)
			if err != nil {
				return Value{}, err
			}
			nl := int(le.Uint16(sc[72:]))
			if err := need(sc, 76+nl, "key name", o); err != nil {
				return Value{}, err
			}
			if strings.EqualFold(decodeName(sc[76:76+nl], le.Uint16(sc[2:])&nkCompName != 0), part) {
				off, found = o, true
				break
			}
		}
		if !found {
			return Value{}, fmt.Errorf("hive: no key %s", keyPath)
		}
	}
	c, err := r.nk(off)
	if err != nil {
		return Value{}, err
	}
	if n := le.Uint32(c[36:]); n > 0 {
		vals, err := r.values(le.Uint32(c[40:]), int(n))
		if err != nil {
			return Value{}, err
		}
		for _, v := range vals {
			if strings.EqualFold(v.Name, name) {
				return v, nil
			}
		}
	}
	return Value{}, fmt.Errorf("hive: key %s has no value %q", keyPath, name)
}

func (r *reader) nk(off uint32) ([]byte, error) {
	c, err := r.cell(off)
	if err != nil {
		return nil, err
	}
	if err := need(c, 76, "key", off); err != nil {
		return nil, err
	}
	if string(c[:2]) != "nk" {
		return nil, fmt.Errorf("hive: cell at %#x is not a key (%q)", off, c[:2])
	}
	return c, nil
}

// Parse reads a whole regf file into a tree. It refuses a hive whose
// sequence numbers differ (not closed cleanly: changes may be in its
// transaction logs) and any structure that points outside the file.
func Parse(b []byte) (*Hive, error) {
	r, rootOff, err := open(b)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	name := make([]uint16, 0, 32)
	for i := 48; i < 112; i += 2 {
		c := le.Uint16(b[i:])
		if c == 0 {
			break
		}
		name = append(name, c)
	}
	root, err := r.key(rootOff, 0)
	if err != nil {
		return nil, err
	}
	h := &Hive{Root: root, Minor: r.minor, Modified: le.Uint64(b[12:]), FileName: string(utf16.Decode(name))}
	h.header = bytes.Clone(b[112:508])
	return h, nil
}

func open(b []byte) (*reader, uint32, error) {
	le := binary.LittleEndian
	if len(b) < baseBlockSize+binHeaderSize || string(b[:4]) != "regf" {
		return nil, 0, fmt.Errorf("hive: not a registry hive (no regf header)")
	}
	if le.Uint32(b[20:]) != 1 {
		return nil, 0, fmt.Errorf("hive: format version %d.%d is not 1.x", le.Uint32(b[20:]), le.Uint32(b[24:]))
	}
	if s1, s2 := le.Uint32(b[4:]), le.Uint32(b[8:]); s1 != s2 {
		return nil, 0, fmt.Errorf("hive: not closed cleanly (sequence numbers %d and %d): its last changes may be in the .LOG1/.LOG2 transaction logs, which are not replayed; boot Windows once or use a clean image", s1, s2)
	}
	if sum := headerChecksum(b); sum != le.Uint32(b[508:]) {
		return nil, 0, fmt.Errorf("hive: header checksum %#x, expected %#x", le.Uint32(b[508:]), sum)
	}
	end := baseBlockSize + int(le.Uint32(b[40:]))
	if end > len(b) || end < baseBlockSize {
		end = len(b) // some writers leave the size short or long; the file bounds it
	}
	r := &reader{b: b[baseBlockSize:end], minor: le.Uint32(b[24:]), sds: map[uint32][]byte{}, seen: map[uint32]bool{}}
	return r, le.Uint32(b[36:]), nil
}

type reader struct {
	b     []byte
	minor uint32
	sds   map[uint32][]byte
	seen  map[uint32]bool
	keys  int
}

// cell is the data of the allocated cell at off.
func (r *reader) cell(off uint32) ([]byte, error) {
	if int64(off)+4 > int64(len(r.b)) {
		return nil, fmt.Errorf("hive: cell offset %#x outside the file", off)
	}
	size := -int64(int32(binary.LittleEndian.Uint32(r.b[off:])))
	if size < 8 || int64(off)+size > int64(len(r.b)) {
		return nil, fmt.Errorf("hive: cell at %#x is free or overruns the file", off)
	}
	return r.b[int64(off)+4 : int64(off)+size], nil
}

func need(c []byte, n int, what string, off uint32) error {
	if len(c) < n {
		return fmt.Errorf("hive: %s at %#x is truncated", what, off)
	}
	return nil
}

func (r *reader) key(off uint32, depth int) (*Key, error) {
	le := binary.LittleEndian
	if depth > maxDepth {
		return nil, fmt.Errorf("hive: keys nested deeper than %d levels", maxDepth)
	}
	if r.seen[off] {
		return nil, fmt.Errorf("hive: key at %#x is reached twice (corrupt subkey lists)", off)
	}
	r.seen[off] = true
	if r.keys++; r.keys > maxKeys {
		return nil, fmt.Errorf("hive: more than %d keys", maxKeys)
	}
	c, err := r.cell(off)
	if err != nil {
		return nil, err
	}
	if err := need(c, 76, "key", off); err != nil {
		return nil, err
	}
	if string(c[:2]) != "nk" {
		return nil, fmt.Errorf("hive: cell at %#x is not a key (%q)", off, c[:2])
	}
	flags := le.Uint16(c[2:])
	nameLen, classLen := int(le.Uint16(c[72:])), int(le.Uint16(c[74:]))
	if err := need(c, 76+nameLen, "key name", off); err != nil {
		return nil, err
	}
	k := &Key{Name: decodeName(c[76:76+nameLen], flags&nkCompName != 0), Modified: le.Uint64(c[4:]),
		flags: flags &^ (nkCompName | nkHiveEntry | nkNoDelete), access: le.Uint32(c[12:])}
	if co := le.Uint32(c[48:]); co != noCell && classLen > 0 {
		cc, err := r.cell(co)
		if err != nil {
			return nil, fmt.Errorf("class of %q: %w", k.Name, err)
		}
		if err := need(cc, classLen, "class name", co); err != nil {
			return nil, err
		}
		k.Class = decodeUTF16Raw(cc[:classLen])
	}
	if so := le.Uint32(c[44:]); so != noCell {
		if k.Security, err = r.security(so); err != nil {
			return nil, fmt.Errorf("security of %q: %w", k.Name, err)
		}
	}
	if n := le.Uint32(c[36:]); n > 0 {
		if k.Values, err = r.values(le.Uint32(c[40:]), int(n)); err != nil {
			return nil, fmt.Errorf("values of %q: %w", k.Name, err)
		}
	}
	if n := le.Uint32(c[20:]); n > 0 {
		offs, err := r.subkeyList(le.Uint32(c[28:]), 0)
		if err != nil {
			return nil, fmt.Errorf("subkeys of %q: %w", k.Name, err)
		}
		if uint32(len(offs)) != n {
			return nil, fmt.Errorf("hive: key %q says %d subkeys, its list holds %d", k.Name, n, len(offs))
		}
		for _, so := range offs {
			s, err := r.key(so, depth+1)
			if err != nil {
				return nil, err
			}
			k.Subkeys = append(k.Subkeys, s)
		}
	}
	return k, nil
}

func decodeName(b []byte, comp bool) string {
	if !comp {
		return decodeUTF16Raw(b)
	}
	rs := make([]rune, len(b))
	for i, c := range b {
		rs[i] = rune(c)
	}
	return string(rs)
}

func (r *reader) security(off uint32) ([]byte, error) {
	if sd, ok := r.sds[off]; ok {
		return sd, nil
	}
	c, err := r.cell(off)
	if err != nil {
		return nil, err
	}
	if err := need(c, 20, "security", off); err != nil {
		return nil, err
	}
	if string(c[:2]) != "sk" {
		return nil, fmt.Errorf("hive: cell at %#x is not a security cell", off)
	}
	n := int(binary.LittleEndian.Uint32(c[16:]))
	if err := need(c, 20+n, "security descriptor", off); err != nil {
		return nil, err
	}
	sd := bytes.Clone(c[20 : 20+n])
	r.sds[off] = sd
	return sd, nil
}

func (r *reader) values(listOff uint32, n int) ([]Value, error) {
	le := binary.LittleEndian
	list, err := r.cell(listOff)
	if err != nil {
		return nil, err
	}
	if err := need(list, 4*n, "value list", listOff); err != nil {
		return nil, err
	}
	out := make([]Value, 0, n)
	for i := 0; i < n; i++ {
		vo := le.Uint32(list[4*i:])
		c, err := r.cell(vo)
		if err != nil {
			return nil, err
		}
		if err := need(c, 20, "value", vo); err != nil {
			return nil, err
		}
		if string(c[:2]) != "vk" {
			return nil, fmt.Errorf("hive: cell at %#x is not a value", vo)
		}
		nl := int(le.Uint16(c[2:]))
		if err := need(c, 20+nl, "value name", vo); err != nil {
			return nil, err
		}
		v := Value{Name: decodeName(c[20:20+nl], le.Uint16(c[16:])&vkCompName != 0), Type: le.Uint32(c[12:])}
		size, dataOff := le.Uint32(c[4:]), le.Uint32(c[8:])
		if size&0x80000000 != 0 {
			n := int(size & 0x7FFFFFFF)
			if n > 4 {
				return nil, fmt.Errorf("hive: value %q claims %d inline bytes", v.Name, n)
			}
			v.Data = bytes.Clone(c[8 : 8+n])
		} else if size > 0 {
			if v.Data, err = r.data(dataOff, int(size)); err != nil {
				return nil, fmt.Errorf("value %q: %w", v.Name, err)
			}
		} else {
			v.Data = []byte{}
		}
		out = append(out, v)
	}
	return out, nil
}

func (r *reader) data(off uint32, size int) ([]byte, error) {
	le := binary.LittleEndian
	c, err := r.cell(off)
	if err != nil {
		return nil, err
	}
	if r.minor >= 4 && size > bigDataMax && len(c) >= 8 && string(c[:2]) == "db" {
		nseg := int(le.Uint16(c[2:]))
		list, err := r.cell(le.Uint32(c[4:]))
		if err != nil {
			return nil, err
		}
		if err := need(list, 4*nseg, "big data list", off); err != nil {
			return nil, err
		}
		out := make([]byte, 0, size)
		for i := 0; i < nseg && len(out) < size; i++ {
			seg, err := r.cell(le.Uint32(list[4*i:]))
			if err != nil {
				return nil, err
			}
			n := min(len(seg), bigDataMax, size-len(out))
			out = append(out, seg[:n]...)
		}
		if len(out) != size {
			return nil, fmt.Errorf("hive: big data at %#x holds %d of %d bytes", off, len(out), size)
		}
		return out, nil
	}
	if err := need(c, size, "value data", off); err != nil {
		return nil, err
	}
	return bytes.Clone(c[:size]), nil
}

// subkeyList flattens an lf/lh/li/ri subkey list into nk offsets.
func (r *reader) subkeyList(off uint32, depth int) ([]uint32, error) {
	le := binary.LittleEndian
	if depth > 2 {
		return nil, fmt.Errorf("hive: subkey index nested too deep at %#x", off)
	}
	c, err := r.cell(off)
	if err != nil {
		return nil, err
	}
	if err := need(c, 4, "subkey list", off); err != nil {
		return nil, err
	}
	n := int(le.Uint16(c[2:]))
	switch string(c[:2]) {
	case "lf", "lh":
		if err := need(c, 4+8*n, "subkey list", off); err != nil {
			return nil, err
		}
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(c[4+8*i:])
		}
		return out, nil
	case "li", "ri":
		if err := need(c, 4+4*n, "subkey list", off); err != nil {
			return nil, err
		}
		var out []uint32
		for i := 0; i < n; i++ {
			o := le.Uint32(c[4+4*i:])
			if string(c[:2]) == "li" {
				out = append(out, o)
				continue
			}
			sub, err := r.subkeyList(o, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("hive: cell at %#x is not a subkey list (%q)", off, c[:2])
}
