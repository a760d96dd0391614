// Package secrettest finds secrets left in files, for tests that prove a
// passcode, a token or a key is nowhere on disk.
package secrettest

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"
)

// Forms returns the encodings in which s could sit in a file: as it is,
// JSON-escaped and UTF-16LE (Windows files, the registry).
func Forms(s string) [][]byte {
	js, _ := json.Marshal(s)
	u := utf16.Encode([]rune(s))
	le := make([]byte, 0, 2*len(u))
	for _, c := range u {
		le = append(le, byte(c), byte(c>>8))
	}
	return [][]byte{[]byte(s), js[1 : len(js)-1], le}
}

// FilesWith returns the regular files under root (relative to it,
// slash-separated) that hold secret in any of its Forms, in any letter
// case. A search that reads no file at all proves nothing and fails the
// test, as does an empty secret.
func FilesWith(t testing.TB, root, secret string) []string {
	t.Helper()
	if secret == "" {
		t.Fatal("secrettest: searching for an empty secret")
	}
	var forms [][]byte
	for _, f := range Forms(secret) {
		forms = append(forms, bytes.ToLower(f))
	}
	var hits []string
	read := 0
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		read++
		b = bytes.ToLower(b)
		for _, f := range forms {
			if bytes.Contains(b, f) {
				rel, _ := filepath.Rel(root, p)
				hits = append(hits, filepath.ToSlash(rel))
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("secrettest: %v", err)
	}
	if read == 0 {
		t.Fatalf("secrettest: no file under %s to search", root)
	}
	return hits
}
