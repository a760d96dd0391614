package hive_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/hive"
)

// bigHive is a synthetic hive the size of a real SOFTWARE hive: 100 000
// keys in a three-level tree, five values each.
func bigHive(b *testing.B) []byte {
	b.Helper()
	h := hive.New("ROOT", 0)
	h.Minor = 5
	for i := 0; i < 100; i++ {
		a, _ := h.Root.Create(fmt.Sprintf("Vendor%03d", i), 0)
		for j := 0; j < 1000; j++ {
			k, _ := a.Create(fmt.Sprintf(`Product%04d\Settings`, j), 0)
			k.SetString("Name", fmt.Sprintf("Product %d of vendor %d", j, i))
			k.SetDWORD("Flags", uint32(j))
			k.Set("Blob", hive.Binary, bytes.Repeat([]byte{byte(j)}, 40))
			k.Set("Path", hive.ExpandSZ, hive.EncodeSZ(`%ProgramFiles%\Vendor\Product\bin`))
			k.Set("List", hive.MultiSZ, hive.EncodeMultiSZ("a", "bb", "ccc"))
		}
	}
	raw, err := h.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkRewrite measures what editing a big offline hive costs (Parse,
// then Marshal of the whole tree) and prints it as a ratio to copying the
// same bytes once, measured in the same run, and the memory used per byte
// of hive.
func BenchmarkRewrite(b *testing.B) {
	raw := bigHive(b)
	start := time.Now()
	for i := 0; i < 20; i++ {
		_ = bytes.Clone(raw)
	}
	base := time.Since(start) / 20
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h, err := hive.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(len(raw))/(1<<20), "hiveMB")
	b.ReportMetric(float64(per)/float64(base), "x-copy")
}
