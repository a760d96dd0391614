package server_test

import (
	"database/sql"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// AU-4: when the audit log cannot be written, admin changes are refused
// and nothing changes. The log is made read-only the way an operator's
// mistake or a full table would: a trigger aborts every insert into it.
func TestAdminChangesFailClosedWithoutAudit(t *testing.T) {
	dir := t.TempDir()
	ts := startServerWith(t, dir, nil)
	if resp := ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil); resp.StatusCode != 200 {
		t.Fatalf("first passcode: %d", resp.StatusCode)
	}
	var before struct{ Generation int }
	ts.adminJSON(t, "GET", "/admin/v1/passcode", nil, &before)

	db, err := sql.Open("sqlite", filepath.Join(dir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER audit_read_only BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit is read-only'); END`); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/admin/v1/passcode/rotate", map[string]string{"grace": "0"}},
		{"PUT", "/admin/v1/security/anonymous", map[string]bool{"on": true}},
		{"POST", "/admin/v1/content", map[string]string{"name": "Image", "contentItemType": "File", "contentItemPurpose": "OperatingSystem"}},
		{"POST", "/admin/v1/tokens", map[string]string{"name": "sneaky"}},
	} {
		resp := ts.adminJSON(t, c.method, c.path, c.body, nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "audit log cannot be written") {
			t.Errorf("%s %s with the audit log read-only: %d %s, want 503", c.method, c.path, resp.StatusCode, b)
		}
	}
	var after struct{ Generation int }
	ts.adminJSON(t, "GET", "/admin/v1/passcode", nil, &after)
	var sec struct{ Anonymous bool }
	ts.adminJSON(t, "GET", "/admin/v1/security", nil, &sec)
	var items []deploy.ContentItem
	ts.adminJSON(t, "GET", "/admin/v1/content", nil, &items)
	var tokens []struct{ Name string }
	ts.adminJSON(t, "GET", "/admin/v1/tokens", nil, &tokens)
	if after.Generation != before.Generation || sec.Anonymous || len(items) != 0 || len(tokens) != 0 {
		t.Errorf("changes went through: generation %d→%d, anonymous %v, %d items, %d tokens",
			before.Generation, after.Generation, sec.Anonymous, len(items), len(tokens))
	}

	// With the log writable again, the same change goes through.
	if _, err := db.Exec(`DROP TRIGGER audit_read_only`); err != nil {
		t.Fatal(err)
	}
	if resp := ts.adminJSON(t, "POST", "/admin/v1/passcode/rotate", map[string]string{"grace": "0"}, nil); resp.StatusCode != 200 {
		t.Errorf("rotate with the log writable: %d", resp.StatusCode)
	}
}
