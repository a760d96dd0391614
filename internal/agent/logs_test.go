package agent_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/client"
)

func TestCMTraceLine(t *testing.T) {
	at := time.Date(2026, 3, 19, 14, 4, 15, 123_000_000, time.FixedZone("CET", 3600))
	tests := map[string]struct {
		msg  string
		sev  agent.Severity
		want string
	}{
		"info":                  {"Step 1 of 3: Format disk", agent.SevInfo, `<![LOG[Step 1 of 3: Format disk]LOG]!><time="13:04:15.123+000" date="03-19-2026" component="agent" context="" type="1" thread="7" file="">`},
		"error":                 {"failed", agent.SevError, `<![LOG[failed]LOG]!><time="13:04:15.123+000" date="03-19-2026" component="agent" context="" type="3" thread="7" file="">`},
		"terminator in message": {"a]LOG]!>b", agent.SevWarning, `<![LOG[a]LOG]!&gt;b]LOG]!><time="13:04:15.123+000" date="03-19-2026" component="agent" context="" type="2" thread="7" file="">`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, agent.CMTraceLine(at, "agent", tc.msg, tc.sev, 7)); diff != "" {
				t.Error(diff)
			}
		})
	}
}

func TestLogsWriteBothFormatsAndBundle(t *testing.T) {
	dir := t.TempDir()
	l, err := agent.OpenLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	l.Log("agent", agent.SevWarning, "two\nlines")
	w := l.Writer("Run command line")
	fmt.Fprint(w, "partial ")
	fmt.Fprint(w, "line\nnext")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	plain, _ := os.ReadFile(filepath.Join(dir, "imprint-agent.log"))
	wantPlain := "2026-01-02T03:04:05.000Z WARN  agent: two\n2026-01-02T03:04:05.000Z WARN  agent: lines\n2026-01-02T03:04:05.000Z INFO  Run command line: partial line\n"
	if diff := cmp.Diff(wantPlain, string(plain)); diff != "" {
		t.Errorf("plain log (-want +got):\n%s", diff)
	}
	cm, _ := os.ReadFile(filepath.Join(dir, "imprint-agent.cmtrace.log"))
	if n := strings.Count(string(cm), "<![LOG["); n != 3 || !strings.Contains(string(cm), `<![LOG[partial line]LOG]!>`) {
		t.Errorf("cmtrace log:\n%s", cm)
	}
	tgz, err := agent.Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if diff := cmp.Diff([]string{"imprint-agent.cmtrace.log", "imprint-agent.log"}, names); diff != "" {
		t.Errorf("bundle (-want +got):\n%s", diff)
	}
}

// flakySender fails while down is set and records what it accepted.
type flakySender struct {
	mu   sync.Mutex
	down bool
	got  []string
}

func (f *flakySender) SendEvents(_ context.Context, _ string, evs []client.AgentEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("connection refused")
	}
	for _, e := range evs {
		f.got = append(f.got, e.Message)
	}
	return nil
}

func TestOutboxSurvivesFailureAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	sender := &flakySender{down: true}
	r := &agent.Reporter{Outbox: &agent.Outbox{Path: path}, Sender: sender, RunID: "run1"}
	for i := 1; i <= 3; i++ {
		if err := r.Report(client.AgentEvent{Type: "log", Message: fmt.Sprint("e", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("flush to a down server succeeded")
	}
	// "Crash": a new outbox on the same file, plus a torn last line.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"type":"log","mess`)
	f.Close()
	ob := &agent.Outbox{Path: path}
	pending, err := ob.Pending()
	if err != nil || len(pending) != 3 {
		t.Fatalf("pending after restart = %d, %v", len(pending), err)
	}
	sender.down = false
	r2 := &agent.Reporter{Outbox: ob, Sender: sender, RunID: "run1"}
	if err := r2.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r2.Report(client.AgentEvent{Type: "log", Message: "e4"}); err != nil {
		t.Fatal(err)
	}
	if err := r2.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"e1", "e2", "e3", "e4"}, sender.got); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	if left, _ := ob.Pending(); len(left) != 0 {
		t.Errorf("%d events left after a full flush", len(left))
	}
}

func TestReporterBackgroundRetries(t *testing.T) {
	sender := &flakySender{down: true}
	r := &agent.Reporter{Outbox: &agent.Outbox{Path: filepath.Join(t.TempDir(), "o")}, Sender: sender, RunID: "r", Backoff: time.Millisecond}
	r.Start(context.Background())
	t.Cleanup(r.Stop)
	if err := r.Report(client.AgentEvent{Type: "log", Message: "x"}); err != nil {
		t.Fatal(err)
	}
	sender.mu.Lock()
	sender.down = false
	sender.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sender.mu.Lock()
		n := len(sender.got)
		sender.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("event never delivered after the server came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
