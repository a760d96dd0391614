package deployrjson_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/deployrjson"
)

// sameTokens fails the test unless out has exactly the JSON tokens of in,
// in the same order and with the same string escapes.
func sameTokens(t *testing.T, in, out []byte) {
	t.Helper()
	want, err := deployrjson.Tokens(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := deployrjson.Tokens(out)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tokens differ (-source +export):\n%s", d)
	}
}

// TestTokenRoundTrip decodes and encodes every shared export and a file
// with the escapes, number spellings and key orders the corpus lacks.
func TestTokenRoundTrip(t *testing.T) {
	files := compatFiles(t)
	b, err := os.ReadFile(filepath.Join("testdata", "escapes-ts.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, compatFile{"escapes-ts.json", deployrjson.KindTaskSequence, append([]byte("\xEF\xBB\xBF"), b...)})
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			v := decodeAny(t, f.kind, f.data)
			// Through a store and back, as the server does.
			stored, err := deploy.EncodeJSON(v)
			if err != nil {
				t.Fatal(err)
			}
			v = decodeAny(t, f.kind, stored)
			var out bytes.Buffer
			if err := deployrjson.Encode(&out, v); err != nil {
				t.Fatal(err)
			}
			sameTokens(t, f.data, out.Bytes())
		})
	}
}

// TestEditedExportKeepsTheRest changes one setting and the name: those
// tokens change, every other token (order, escapes) stays.
func TestEditedExportKeepsTheRest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "escapes-ts.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := deployrjson.DecodeTaskSequence(bytes.NewReader(b), maxSize)
	if err != nil {
		t.Fatal(err)
	}
	ts.Name = "Plain"
	ts.Versions[0].Steps[0].Settings["Zeta"] = "2"
	ts.Versions[0].Steps[0].Settings["New"] = "<n>"
	var out bytes.Buffer
	if err := deployrjson.Encode(&out, ts); err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(
		`"Escapes \u0027quoted\u0027 \/ <b>&amp;</b> \u00e9"`, `"Plain"`,
		`"Zeta":"1"`, `"Zeta":"2"`,
		`"Mid":"\/path"}`, `"Mid":"\/path","New":"<n>"}`,
	).Replace(string(b))
	sameTokens(t, []byte(want), out.Bytes())
}
