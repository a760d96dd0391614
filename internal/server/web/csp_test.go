package web

import (
	"io/fs"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// inlineCode lists what in an HTML document the CSP would block or that
// needs 'unsafe-inline': a <script> without src, a <style> element, a
// style= attribute, an on*= event handler, a javascript: URL.
func inlineCode(doc string) []string {
	var bad []string
	z := html.NewTokenizer(strings.NewReader(doc))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return bad
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		hasSrc := false
		for _, a := range tok.Attr {
			key := strings.ToLower(a.Key)
			switch {
			case key == "src":
				hasSrc = true
			case key == "style":
				bad = append(bad, "<"+tok.Data+"> has a style attribute")
			case strings.HasPrefix(key, "on"):
				bad = append(bad, "<"+tok.Data+"> has an event handler "+key)
			case (key == "href" || key == "action" || key == "formaction") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:"):
				bad = append(bad, "<"+tok.Data+"> has a javascript: URL")
			}
		}
		switch tok.Data {
		case "script":
			if !hasSrc {
				bad = append(bad, "<script> without src (inline script)")
			}
		case "style":
			bad = append(bad, "<style> element (inline style)")
		}
	}
}

func TestInlineCodeDetector(t *testing.T) {
	tests := []struct {
		doc  string
		want int
	}{
		{`<script src="/static/console.js"></script><p class="x">ok</p>`, 0},
		{`<script>alert(1)</script>`, 1},
		{`<style>p{}</style>`, 1},
		{`<p style="color:red">x</p>`, 1},
		{`<button onclick="go()">x</button>`, 1},
		{`<img src="x" onerror="go()">`, 1},
		{`<a href="javascript:go()">x</a>`, 1},
		{`<p STYLE="x" onClick="y">`, 2},
	}
	for _, tt := range tests {
		if got := inlineCode(tt.doc); len(got) != tt.want {
			t.Errorf("inlineCode(%q) = %v, want %d findings", tt.doc, got, tt.want)
		}
	}
}

// TestNoInlineCodeInTemplates parses every embedded template: the strict
// CSP holds only while none of them carries inline script or style.
func TestNoInlineCodeInTemplates(t *testing.T) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(names) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	for _, n := range names {
		b, err := templateFS.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range inlineCode(string(b)) {
			t.Errorf("%s: %s", n, f)
		}
	}
}
