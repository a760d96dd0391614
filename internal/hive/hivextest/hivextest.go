// Package hivextest reads hive files with hivex (Debian libhivex-bin), an
// independent implementation, so tests can check what internal/hive and
// its users write. Tests skip when hivex is missing and fail instead when
// IMPRINT_TEST_REQUIRE is set, as `make unit` does (`make deps` installs it).
package hivextest

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// Need skips the test when hivexml or hivexsh is not installed, or fails
// it when IMPRINT_TEST_REQUIRE is set (testenv.Missing).
func Need(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"hivexml", "hivexsh"} {
		testenv.LookPath(t, tool)
	}
}

type node struct {
	Name   string  `xml:"name,attr"`
	Nodes  []node  `xml:"node"`
	Values []value `xml:"value"`
}

type value struct {
	Type     string   `xml:"type,attr"`
	Key      string   `xml:"key,attr"`
	Value    string   `xml:"value,attr"`
	Encoding string   `xml:"encoding,attr"`
	Default  string   `xml:"default,attr"`
	Strings  []string `xml:"string"`
}

// Dump reads the hive file at path with hivexml and returns every key's
// values by key path (backslash-separated, without the root's name, ""
// for the root). Each value is rendered as TYPE:TEXT, TYPE being hivexml's
// type name (string, expand, string-list, int32, int64, binary, none, ...)
// and TEXT the value as hivexml prints it: strings as they are, numbers in
// decimal, string lists joined with "|" (hivex lists the final empty
// string too), other types base64. The default value is named "@".
func Dump(t testing.TB, path string) map[string]map[string]string {
	t.Helper()
	out, err := exec.Command("hivexml", path).Output()
	if err != nil {
		t.Fatalf("hivexml %s: %v", filepath.Base(path), err)
	}
	var doc struct {
		Root node `xml:"node"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("hivexml output: %v", err)
	}
	m := map[string]map[string]string{}
	var walk func(n node, path string)
	walk = func(n node, path string) {
		vals := map[string]string{}
		for _, v := range n.Values {
			name := v.Key
			if v.Default == "1" {
				name = "@"
			}
			text := v.Value
			if v.Encoding == "base64" { // hivexml wraps base64 at 72 columns
				text = strings.Join(strings.Fields(text), "")
			}
			if v.Type == "string-list" {
				text = strings.Join(v.Strings, "|")
			}
			vals[name] = v.Type + ":" + text
		}
		m[path] = vals
		for _, c := range n.Nodes {
			p := c.Name
			if path != "" {
				p = path + `\` + c.Name
			}
			walk(c, p)
		}
	}
	walk(doc.Root, "")
	return m
}

// Shell runs a hivexsh script with writes enabled against a copy of the
// hive at src and returns the path of the committed result. hivexsh is the
// independent writer tests use to make "image" hives.
func Shell(t testing.TB, src, script string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "hivex.hive")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("hivexsh", "-w", dst)
	cmd.Stdin = strings.NewReader(script + "\ncommit\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hivexsh: %v\n%s", err, out)
	}
	return dst
}
