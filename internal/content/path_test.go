package content_test

import (
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

func TestValidManifestPath(t *testing.T) {
	good := []string{
		"a",
		"a/b/c.txt",
		"Drivers/Intel/e1000.inf",
		"weird name with spaces.txt",
		".hidden",
		"a..b",
		"...x",
		"consolas.ttf", // CON only as the whole base name
		"com10.txt",
		"pilote-é.inf",
		strings.Repeat("x", content.MaxPathLen),
		"%2e%2e/%2e%2e%2fetc", // no URL decoding here: literal percent signs
	}
	for _, p := range good {
		if err := content.ValidManifestPath(p); err != nil {
			t.Errorf("ValidManifestPath(%q) = %v, want nil", p, err)
		}
	}
	bad := map[string]string{
		"":                        "empty",
		"/etc/passwd":             "absolute",
		"..":                      `".."`,
		"../a":                    `".."`,
		"a/../../b":               `".."`,
		"a/..":                    `".."`,
		"./a":                     `"."`,
		"a/./b":                   `"."`,
		"a/":                      "empty path element",
		"a//b":                    "empty path element",
		`..\..\evil`:              "backslash",
		`a\b`:                     "backslash",
		`\\host\share\x`:          "backslash",
		"C:/x":                    "colon",
		"C:x":                     "colon",
		"file::$DATA":             "colon",
		"a\x00b":                  "NUL",
		"a\nb":                    "control character",
		"a\x7fb":                  "control character",
		"CON":                     "device name",
		"dir/nul.txt":             "device name",
		"Com1":                    "device name",
		"lpt9.log":                "device name",
		"COM¹":                    "device name",
		"trailing.":               "ends in a dot or space",
		"trailing ":               "ends in a dot or space",
		"dir./x":                  "ends in a dot or space",
		"\xff\xfe":                "UTF-8",
		strings.Repeat("x", 4097): "longer than 4096",
	}
	for p, msg := range bad {
		err := content.ValidManifestPath(p)
		if deploy.ErrorKind(err) != deploy.KindInvalid {
			t.Errorf("ValidManifestPath(%q) = %v, want KindInvalid", p, err)
			continue
		}
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("ValidManifestPath(%q) = %q, want it to mention %q", p, err, msg)
		}
	}
}

func FuzzValidManifestPath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a\\b", "C:/", "con", "a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if content.ValidManifestPath(p) != nil {
			return
		}
		// Anything accepted stays inside the target directory on any OS.
		for _, el := range strings.Split(p, "/") {
			if el == "" || el == "." || el == ".." || strings.ContainsAny(el, "\\:\x00") {
				t.Fatalf("accepted unsafe path %q", p)
			}
		}
	})
}
