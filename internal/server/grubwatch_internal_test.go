package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/boot"
)

func TestGrubWatchWarnsAboutAStalledGRUB(t *testing.T) {
	var logs bytes.Buffer
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w := newGrubWatch(slog.New(slog.NewTextHandler(&logs, nil)))
	w.now = func() time.Time { return now }

	w.saw("10.0.0.5", boot.TFTPShim)
	w.saw("10.0.0.5", boot.TFTPGrub)
	w.saw("10.0.0.6", boot.TFTPGrub)
	w.saw("10.0.0.6", boot.TFTPGrubBootstrap) // this one's GRUB found its config
	now = now.Add(30 * time.Second)
	w.check()
	if logs.Len() != 0 {
		t.Fatalf("warned before GRUB had a minute: %s", logs.String())
	}
	now = now.Add(31 * time.Second)
	w.check()
	out := logs.String()
	if !strings.Contains(out, "next-server") || !strings.Contains(out, "10.0.0.5") || strings.Contains(out, "10.0.0.6") {
		t.Fatalf("warning = %q, want one naming 10.0.0.5 and next-server", out)
	}
	// Once an hour, not for every machine.
	logs.Reset()
	w.saw("10.0.0.7", boot.TFTPGrub)
	now = now.Add(2 * time.Minute)
	w.check()
	if logs.Len() != 0 {
		t.Errorf("warned again within the hour: %s", logs.String())
	}
}
