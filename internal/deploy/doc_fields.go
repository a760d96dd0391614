package deploy

import "encoding/json"

// Doc keeps what a typed struct alone would lose when a DeployR document
// passes through Imprint: fields we do not model (kept verbatim, in Extra)
// and modelled fields the source left out altogether (Omitted), so that an
// export writes back exactly the keys the import read. Package deployrjson
// fills and honours it; everything else may ignore it.
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
