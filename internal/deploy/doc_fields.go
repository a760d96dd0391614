package deploy

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// Doc keeps what a typed struct alone would lose when a DeployR document
// passes through Imprint: fields we do not model (kept verbatim, in Extra)
// and modelled fields the source left out altogether (Omitted), so that an
// export writes back exactly the keys the import read. Every document type
// embeds it and marshals through marshalDoc/unmarshalDoc, so the plain
// encoding/json round trip — API, store and export alike — is lossless.
type Doc struct {
	Extra   map[string]json.RawMessage `json:"-"`
	Omitted []string                   `json:"-"`
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

// fieldInfo maps a struct type's JSON keys to field indexes.
type fieldInfo map[string][]int

var fieldCache sync.Map // reflect.Type -> fieldInfo

func jsonFields(t reflect.Type) fieldInfo {
	if fi, ok := fieldCache.Load(t); ok {
		return fi.(fieldInfo)
	}
	fi := fieldInfo{}
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
		fi[name] = f.Index
	}
	fieldCache.Store(t, fi)
	return fi
}

// marshalDoc encodes plain (a pointer to a method-less copy of a document
// type) and folds in d: unknown fields are added back, and fields the source
// omitted stay omitted while they still hold their zero value.
func marshalDoc(plain any, d *Doc) ([]byte, error) {
	b, err := json.Marshal(plain)
	if err != nil || (len(d.Extra) == 0 && len(d.Omitted) == 0) {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	v := reflect.ValueOf(plain).Elem()
	fi := jsonFields(v.Type())
	for _, k := range d.Omitted {
		if idx, ok := fi[k]; ok && v.FieldByIndex(idx).IsZero() {
			delete(m, k)
		}
	}
	for k, raw := range d.Extra {
		if _, known := fi[k]; !known {
			m[k] = raw
		}
	}
	return json.Marshal(m)
}

// unmarshalDoc decodes b into plain and records in d the keys plain does
// not know and the known keys b lacks.
func unmarshalDoc(b []byte, plain any, d *Doc) error {
	if err := json.Unmarshal(b, plain); err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	fi := jsonFields(reflect.ValueOf(plain).Elem().Type())
	d.Extra, d.Omitted = nil, nil
	for k, raw := range m {
		if _, known := fi[k]; !known {
			if d.Extra == nil {
				d.Extra = map[string]json.RawMessage{}
			}
			d.Extra[k] = raw
		}
	}
	for k := range fi {
		if _, ok := m[k]; !ok {
			d.Omitted = append(d.Omitted, k)
		}
	}
	return nil
}
