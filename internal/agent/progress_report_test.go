package agent

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// A transfer's progress reaches the server as progress events with byte
// counts, every 5 % up to the end, not once per callback.
func TestProgressIsReportedWithBytes(t *testing.T) {
	var out bytes.Buffer
	ob := &Outbox{Path: filepath.Join(t.TempDir(), "outbox.jsonl")}
	a := &Agent{Console: NewConsole(strings.NewReader(""), &out), reporter: &Reporter{Outbox: ob}}
	const total = 1000
	for done := int64(0); done <= total; done += 2 {
		a.progress(deploy.Ref{}, "Windows 11", done, total)
	}
	evs, err := ob.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 20 {
		t.Fatalf("%d progress events for one transfer, want 20 (5, 10, … 100 %%)", len(evs))
	}
	for i, e := range evs {
		want := int64((i + 1) * 50)
		if e.Type != "progress" || e.Name != "Windows 11" || e.BytesTotal != total || e.BytesDone != want {
			t.Errorf("event %d = %+v, want progress of Windows 11 at %d of %d bytes", i, e, want, total)
		}
	}
}
