package deployrjson_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/deployrjson"
)

// FuzzDecode feeds any document to the DeployR import, which a technician
// may be handed from anywhere. A refusal is KindInvalid (KindTooLarge only
// past the limit); an accepted export is of the kind Detect names, and
// encoding it is a fixed point: decoding what Encode wrote and encoding
// again gives the same bytes and kind.
// Seeds: testdata/fuzz/FuzzDecode, and the real DeployR exports under
// ../shared/compat/deployr when that checkout is present (read, not copied).
func FuzzDecode(f *testing.F) {
	const max = 64 << 10
	for _, sub := range []string{"tasksequences", "stepdefinitions", "contentitems"} {
		files, _ := filepath.Glob(filepath.Join(compatDir, sub, "*.json"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil && len(b) <= max {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, kind, err := deployrjson.Decode(bytes.NewReader(b), max)
		if err != nil {
			switch k := deploy.ErrorKind(err); {
			case k == deploy.KindTooLarge && len(b) > max:
			case k != deploy.KindInvalid:
				t.Fatalf("Decode error %v is %v, want KindInvalid", err, k)
			}
			return
		}
		if k, err := deployrjson.Detect(b); err != nil || k != kind {
			t.Fatalf("Decode says %v, Detect says %v, %v", kind, k, err)
		}
		var once bytes.Buffer
		if err := deployrjson.Encode(&once, v); err != nil {
			t.Fatalf("Encode: %v", err)
		}
		v2, kind2, err := deployrjson.Decode(bytes.NewReader(once.Bytes()), int64(once.Len()))
		if err != nil {
			t.Fatalf("what Encode wrote does not decode: %v\n%s", err, once.Bytes())
		}
		if kind2 != kind {
			t.Fatalf("a %v encodes to a %v:\n%s", kind, kind2, once.Bytes())
		}
		var twice bytes.Buffer
		if err := deployrjson.Encode(&twice, v2); err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if !bytes.Equal(once.Bytes(), twice.Bytes()) {
			t.Fatalf("encoding is not a fixed point:\n once %s\ntwice %s", once.Bytes(), twice.Bytes())
		}
	})
}
