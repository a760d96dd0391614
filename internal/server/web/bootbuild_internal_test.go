package web

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestBuildJobLog: the build's output becomes whole lines (a line
// written in pieces, CRLF, an unfinished last line), long lines are cut
// and only the last maxBuildLines are kept.
func TestBuildJobLog(t *testing.T) {
	tests := []struct {
		name        string
		writes      []string
		wantLines   []string
		wantDropped int
	}{
		{"pieces", []string{"fetch", "ing kernel\nunpa", "cking\n"}, []string{"fetching kernel", "unpacking"}, 0},
		{"crlf and unfinished", []string{"one\r\ntwo\r\nthree"}, []string{"one", "two", "three"}, 0},
		{"long line cut", []string{strings.Repeat("x", maxBuildLine+10) + "\nnext\n"}, []string{strings.Repeat("x", maxBuildLine), "next"}, 0},
		{"long unfinished line cut", []string{strings.Repeat("y", maxBuildLine-1), "zz", "zz"}, []string{strings.Repeat("y", maxBuildLine-1) + "z"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j buildJob
			if !j.start("root", time.Unix(1, 0)) {
				t.Fatal("start refused on an idle job")
			}
			for _, w := range tt.writes {
				if n, err := j.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", len(w), n, err)
				}
			}
			v := j.view()
			if strings.Join(v.Lines, "|") != strings.Join(tt.wantLines, "|") || v.Dropped != tt.wantDropped {
				t.Errorf("lines %q (dropped %d), want %q", v.Lines, v.Dropped, tt.wantLines)
			}
		})
	}

	var j buildJob
	j.start("root", time.Unix(1, 0))
	for i := range maxBuildLines + 5 {
		fmt.Fprintf(&j, "line %d\n", i)
	}
	if j.start("eve", time.Unix(2, 0)) {
		t.Error("a second start while running was allowed")
	}
	j.finish(nil, time.Unix(3, 0))
	v := j.view()
	if len(v.Lines) != maxBuildLines || v.Dropped != 5 || v.Lines[0] != "line 5" || v.State != jobSucceeded || v.By != "root" {
		t.Errorf("after %d lines: %d kept, %d dropped, first %q, state %s by %s", maxBuildLines+5, len(v.Lines), v.Dropped, v.Lines[0], v.State, v.By)
	}
	if !j.start("eve", time.Unix(4, 0)) {
		t.Fatal("a new build after the last ended was refused")
	}
	if v := j.view(); len(v.Lines) != 0 || v.Dropped != 0 || !v.Ended.IsZero() || v.By != "eve" {
		t.Errorf("a new build kept the last one's log: %+v", v)
	}
}
