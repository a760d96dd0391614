package deployrjson_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/deployrjson"
)

// BenchmarkDocumentRoundTrip measures decode-and-encode of the largest
// shared task sequence through the document types (which keep key order
// and source bytes) against the baseline of a generic encoding/json round
// trip of the same file, and reports the ratio.
func BenchmarkDocumentRoundTrip(b *testing.B) {
	src, err := os.ReadFile(filepath.Join(compatDir, "tasksequences", "windows-bare-metal-from-cloud-github-8770d276.json"))
	if err != nil {
		b.Fatal(err)
	}
	timeIt := func(fn func()) time.Duration {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			fn()
		}
		return time.Since(start)
	}
	base := timeIt(func() {
		var v any
		if err := json.Unmarshal(src, &v); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	})
	docs := timeIt(func() {
		ts, err := deployrjson.DecodeTaskSequence(bytes.NewReader(src), 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := deploy.EncodeJSON(ts); err != nil {
			b.Fatal(err)
		}
	})
	b.ReportMetric(float64(base.Microseconds())/float64(b.N), "baseline-µs/op")
	b.ReportMetric(float64(docs.Microseconds())/float64(b.N), "documents-µs/op")
	b.ReportMetric(float64(docs)/float64(base), "ratio")
}
