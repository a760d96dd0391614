package deploy

import (
	"bytes"
	"encoding/json"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Doc keeps what a typed struct alone would lose when a DeployR document
// passes through Imprint: fields we do not model (kept verbatim, in Extra),
// modelled fields the source left out altogether (Omitted), and the source's
// own spelling (Source): the order of its keys and the bytes of every value,
// so that a value left unchanged is written back byte for byte ("\u0027",
// "1.0" and all) and keys keep their order. Every document type embeds it
// and marshals through marshalDoc/unmarshalDoc, so the plain encoding/json
// round trip — API, store and export alike — gives back the source's JSON
// tokens in the source's order, provided HTML escaping is off (EncodeJSON).
type Doc struct {
	Extra   map[string]json.RawMessage `json:"-"`
	Omitted []string                   `json:"-"`
	Source  *DocSource                 `json:"-"`
}

// DocSource is a document object as read. It is never modified after
// decoding, so copies of a document may share it.
type DocSource struct {
	Keys []string                   // in source order
	Raw  map[string]json.RawMessage // values, except arrays of documents (those keep their own)
}

// EncodeJSON marshals v compactly without escaping <, > and &, as DeployR
// writes them. Stores and clients use it for documents so the bytes kept in
// Doc.Source are not rewritten on the way.
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Str returns *p, or "" for nil: for the nullable strings of DeployR's JSON.
func Str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// StrPtr returns a pointer to s.
func StrPtr(s string) *string { return &s }

// fieldMeta describes one JSON key of a struct type.
type fieldMeta struct {
	index    []int
	docSlice bool // a slice of documents: each element keeps its own source
	integer  bool // an integer (or pointer to one)
}

// fieldInfo maps a struct type's JSON keys to field metadata; names lists
// them in struct order.
type fieldInfo struct {
	byName map[string]fieldMeta
	names  []string
}

var fieldCache sync.Map // reflect.Type -> *fieldInfo

var docType = reflect.TypeOf(Doc{})

func jsonFields(t reflect.Type) *fieldInfo {
	if fi, ok := fieldCache.Load(t); ok {
		return fi.(*fieldInfo)
	}
	fi := &fieldInfo{byName: map[string]fieldMeta{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		m := fieldMeta{index: f.Index}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			m.integer = true
		case reflect.Slice:
			if e := ft.Elem(); e.Kind() == reflect.Struct {
				if df, ok := e.FieldByName("Doc"); ok && df.Anonymous && df.Type == docType {
					m.docSlice = true
				}
			}
		}
		fi.byName[name] = m
		fi.names = append(fi.names, name)
	}
	fieldCache.Store(t, fi)
	return fi
}

// objectFields splits a JSON object into its keys, in order (first
// occurrence), and raw values (last occurrence, as encoding/json decodes).
// ok is false when b is not an object.
func objectFields(b []byte) (keys []string, vals map[string]json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if d, isDelim := tok.(json.Delim); err != nil || !isDelim || d != '{' {
		return nil, nil, false
	}
	vals = map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		k, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, false
		}
		if _, seen := vals[k]; !seen {
			keys = append(keys, k)
		}
		vals[k] = raw
	}
	return keys, vals, true
}

// writeObject writes keys in order with their values from vals.
func writeObject(keys []string, vals map[string]json.RawMessage) []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := EncodeJSON(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vals[k])
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// marshalDoc encodes plain (a pointer to a method-less copy of a document
// type) and folds in d: unknown fields are added back, fields the source
// omitted stay omitted while they still hold their zero value, keys follow
// the source's order (new ones after them) and unchanged values keep the
// source's bytes.
func marshalDoc(plain any, d *Doc) ([]byte, error) {
	b, err := EncodeJSON(plain)
	if err != nil || (len(d.Extra) == 0 && len(d.Omitted) == 0 && d.Source == nil) {
		return b, err
	}
	keys, vals, ok := objectFields(b)
	if !ok {
		return b, nil
	}
	v := reflect.ValueOf(plain).Elem()
	fi := jsonFields(v.Type())
	for _, k := range d.Omitted {
		if m, ok := fi.byName[k]; ok && v.FieldByIndex(m.index).IsZero() {
			delete(vals, k)
		}
	}
	var extra []string
	for k, raw := range d.Extra {
		if _, known := fi.byName[k]; !known {
			vals[k] = raw
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	keys = append(keys, extra...)
	var order []string
	placed := map[string]bool{}
	if d.Source != nil {
		for _, k := range d.Source.Keys {
			if _, ok := vals[k]; ok && !placed[k] {
				order = append(order, k)
				placed[k] = true
			}
		}
		for k, src := range d.Source.Raw {
			if cur, ok := vals[k]; ok {
				if _, known := fi.byName[k]; known {
					vals[k] = mergeRaw(src, cur)
				}
			}
		}
	}
	for _, k := range keys {
		if _, ok := vals[k]; ok && !placed[k] {
			order = append(order, k)
			placed[k] = true
		}
	}
	return writeObject(order, vals), nil
}

// mergeRaw returns src when it encodes the same JSON value as cur, else
// cur, keeping src's key order and unchanged members inside objects and
// same-length arrays.
func mergeRaw(src, cur json.RawMessage) json.RawMessage {
	if bytes.Equal(src, cur) {
		return src
	}
	var a, b any
	if decodeNumbers(src, &a) != nil || decodeNumbers(cur, &b) != nil {
		return cur
	}
	if sameValue(a, b) {
		return src
	}
	switch {
	case isKind(src, '{') && isKind(cur, '{'):
		sk, sv, ok1 := objectFields(src)
		ck, cv, ok2 := objectFields(cur)
		if !ok1 || !ok2 {
			return cur
		}
		var order []string
		for _, k := range sk {
			if c, ok := cv[k]; ok {
				order = append(order, k)
				cv[k] = mergeRaw(sv[k], c)
			}
		}
		for _, k := range ck {
			if _, ok := sv[k]; !ok {
				order = append(order, k)
			}
		}
		return writeObject(order, cv)
	case isKind(src, '[') && isKind(cur, '['):
		var sa, ca []json.RawMessage
		if json.Unmarshal(src, &sa) != nil || json.Unmarshal(cur, &ca) != nil || len(sa) != len(ca) {
			return cur
		}
		var buf bytes.Buffer
		buf.WriteByte('[')
		for i := range ca {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(mergeRaw(sa[i], ca[i]))
		}
		buf.WriteByte(']')
		return buf.Bytes()
	}
	return cur
}

func isKind(b []byte, c byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == c
}

func decodeNumbers(b []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// sameValue compares decoded JSON values; numbers compare by value, so
// 1.0 equals 1.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		fx, ok1 := new(big.Float).SetString(string(x))
		fy, ok2 := new(big.Float).SetString(string(y))
		return ok1 && ok2 && fx.Cmp(fy) == 0
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !sameValue(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// integral rewrites a number token written with a fraction or exponent but
// holding a whole value ("1.0", "1e2") as a plain integer, so it decodes
// into an int field; ok is false for anything else.
func integral(raw json.RawMessage) (json.RawMessage, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || !strings.ContainsAny(s, ".eE") || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return nil, false
	}
	f, ok := new(big.Float).SetString(s)
	if !ok || !f.IsInt() {
		return nil, false
	}
	i, _ := f.Int(nil)
	return json.RawMessage(i.String()), true
}

// unmarshalDoc decodes b into plain and records in d the keys plain does
// not know, the known keys b lacks, and the source's key order and values.
func unmarshalDoc(b []byte, plain any, d *Doc) error {
	keys, vals, ok := objectFields(b)
	if !ok {
		// null, or not an object: let encoding/json decide.
		return json.Unmarshal(b, plain)
	}
	fi := jsonFields(reflect.ValueOf(plain).Elem().Type())
	orig := vals
	in := b
	fixed := false
	for k, raw := range vals {
		if m, ok := fi.byName[k]; ok && m.integer {
			if n, ok := integral(raw); ok {
				if !fixed {
					cp := make(map[string]json.RawMessage, len(vals))
					for kk, vv := range vals {
						cp[kk] = vv
					}
					vals, fixed = cp, true
				}
				vals[k] = n
			}
		}
	}
	if fixed {
		in = writeObject(keys, vals)
	}
	if err := json.Unmarshal(in, plain); err != nil {
		return err
	}
	vals = orig // the source's own bytes, not the fixed ones
	d.Extra, d.Omitted = nil, nil
	src := &DocSource{Keys: keys, Raw: map[string]json.RawMessage{}}
	for _, k := range keys {
		m, known := fi.byName[k]
		switch {
		case !known:
			if d.Extra == nil {
				d.Extra = map[string]json.RawMessage{}
			}
			d.Extra[k] = vals[k]
		case !m.docSlice:
			src.Raw[k] = vals[k]
		}
	}
	for _, k := range fi.names {
		if _, ok := vals[k]; !ok {
			d.Omitted = append(d.Omitted, k)
		}
	}
	d.Source = src
	return nil
}
