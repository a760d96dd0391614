package web

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/agent"
)

// The viewer reads what the agent writes: its CMTrace lines (severity,
// component, a message over two lines, one containing the end marker) in
// the bundle the agent uploads.
func TestParseBundleOfAgentLogs(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	lines := agent.CMTraceLine(at, "imprint-agent", "Start Apply", agent.SevInfo, 1) + "\n" +
		agent.CMTraceLine(at, "step", "disk is slow\nsecond line", agent.SevWarning, 1) + "\n" +
		agent.CMTraceLine(at, "step", "exit 3 ]LOG]!> odd", agent.SevError, 1) + "\n"
	os.WriteFile(filepath.Join(dir, "imprint-agent.cmtrace.log"), []byte(lines), 0o644)
	os.WriteFile(filepath.Join(dir, "imprint-agent.log"), []byte("plain\n"), 0o644)
	tgz, err := agent.Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := parseBundle(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	var cm *logFile
	for i := range files {
		if files[i].Name == "imprint-agent.cmtrace.log" {
			cm = &files[i]
		}
	}
	if len(files) != 2 || cm == nil {
		t.Fatalf("files = %+v", files)
	}
	want := []logEntry{
		{Message: "Start Apply", Component: "imprint-agent", Severity: "info", Time: "05:06:07.000", Date: "03-04-2026"},
		{Message: "disk is slow\nsecond line", Component: "step", Severity: "warning", Time: "05:06:07.000", Date: "03-04-2026"},
		{Message: "exit 3 ]LOG]!> odd", Component: "step", Severity: "error", Time: "05:06:07.000", Date: "03-04-2026"},
	}
	if len(cm.Entries) != len(want) {
		t.Fatalf("entries = %+v", cm.Entries)
	}
	for i := range want {
		if cm.Entries[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, cm.Entries[i], want[i])
		}
	}
	if _, err := parseBundle(bytes.NewReader([]byte("not gzip"))); err == nil {
		t.Error("a bundle that is not gzip parsed")
	}
}
