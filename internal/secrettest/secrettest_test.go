package secrettest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/secrettest"
)

func TestFilesWith(t *testing.T) {
	root := t.TempDir()
	const secret = `Canary "Pass" 77`
	files := map[string]string{
		"plain.txt":      "x " + secret + " y",
		"sub/state.json": `{"v":"Canary \"Pass\" 77"}`,
		"upper.txt":      "CANARY \"PASS\" 77",
		"clean.txt":      "Canary Pass 77",
		"utf16.reg":      string([]byte{'C', 0, 'a', 0, 'n', 0, 'a', 0, 'r', 0, 'y', 0, ' ', 0, '"', 0, 'P', 0, 'a', 0, 's', 0, 's', 0, '"', 0, ' ', 0, '7', 0, '7', 0}),
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := secrettest.FilesWith(t, root, secret)
	if d := cmp.Diff([]string{"plain.txt", "sub/state.json", "upper.txt", "utf16.reg"}, got); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
}
