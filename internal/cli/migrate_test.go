//go:build linux

package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/cli"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/postgres"
	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
)

// seedSQLite fills a server data directory's database with a row in every
// table, through the store (as a server writes them).
func seedSQLite(t *testing.T, dir string) {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("seed %s: %v", what, err)
		}
	}
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	check("setting", db.PutSetting(ctx, "binary", []byte{0, 1, 0xfe, 0xff}))
	check("token", db.PutSetting(ctx, "admin.tokens", []byte(`[{"name":"ci"}]`)))
	check("step definition", db.PutStepDefinition(ctx, &deploy.StepDefinition{Name: "Custom step"}))
	check("task sequence", db.PutTaskSequence(ctx, &deploy.TaskSequence{Name: "Windows 11"}))
	item := &deploy.ContentItem{ID: "d819ff51-72a1-4e3c-bdf3-fcb69cf1bbab", Name: "Scripts", Type: deploy.ContentFile,
		Purpose: deploy.PurposeOther, VersionsCount: 1, CreatedDate: 1753386736, LastModifiedDate: 1753386737,
		Versions: []deploy.ContentVersion{{ID: "e754f30d-cf06-4b19-b487-e704bd5edb0b", VersionNo: 1,
			Status: deploy.StatusActive, AwaitingContent: true, CreatedDate: 1753386736, LastModifiedDate: 1764650069}}}
	check("content item", db.ImportContentItem(ctx, item))
	_, err = db.FillContentVersion(ctx, item.ID, 1, strings.Repeat("ab", 32), nil, 10)
	check("content fill", err)
	check("device", db.UpsertDevice(ctx, &deploy.Device{ID: "dev-1"}))
	check("next boot", db.SetNextBoot(ctx, "dev-1", deploy.NextBootLocal))
	r := &deploy.Run{DeviceID: "dev-1", TaskSequenceID: "ts", VersionNo: 1, State: deploy.RunRunning, StartedAt: t0}
	check("run", db.CreateRun(ctx, r))
	for i := range 3 {
		check("event", db.AppendRunEvent(ctx, &deploy.RunEvent{RunID: r.ID, Type: "step-end", Time: t0.Add(time.Duration(i) * time.Second)}))
	}
	check("session", db.CreateSession(ctx, &deploy.Session{TokenHash: []byte{9, 0, 0xff}, Method: "passcode", DeviceID: "dev-1",
		Generation: 2, CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	check("user", db.CreateUser(ctx, &deploy.User{Name: "ada", Role: deploy.RoleAdmin, PasswordHash: "$argon2id$x", CreatedAt: t0, UpdatedAt: t0}))
	for i := range 5 {
		check("audit", db.AppendAudit(ctx, &deploy.AuditEvent{Action: "test", Outcome: "success", Details: map[string]string{"i": string(rune('a' + i))}}))
	}
	_, _, err = db.TakeThrottle(ctx, time.Now(), time.Hour, deploy.ThrottleLimit{Key: "login.source:192.0.2.1", Limit: 100})
	check("throttle", err)
}

func migrate(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"migrate"}, args...), strings.NewReader(""), &out, &out)
	return code, out.String()
}

// exports returns each table's count and hash, by table.
func exports(t *testing.T, db *sqlstore.DB) map[string]sqlstore.TableSum {
	t.Helper()
	sums, err := db.Export(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]sqlstore.TableSum{}
	for _, s := range sums {
		m[s.Table] = s
	}
	return m
}

// TestMigrateSQLiteToPostgres copies a seeded data directory into an empty
// PostgreSQL database: every table arrives with the same rows (counts and
// canonical hashes), the audit chain verifies, the store reads what was
// written, and a second copy into the now full database is refused unless
// --replace.
func TestMigrateSQLiteToPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	dir := t.TempDir()
	seedSQLite(t, dir)

	code, out := migrate(t, "--from", "sqlite:"+dir, "--to", dsn)
	if code != 0 {
		t.Fatalf("migrate: exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "every table matches") || !strings.Contains(out, "audit chain of 5 entries verified") {
		t.Errorf("migrate output does not report the verification:\n%s", out)
	}

	src, err := sqlite.Open(t.Context(), filepath.Join(dir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	want, got := exports(t, src.DB), exports(t, dst.DB)
	for _, tb := range sqlstore.Tables() {
		w, g := want[tb.Name], got[tb.Name]
		if w.Rows == 0 {
			t.Errorf("table %s: the seed wrote no row, the test does not cover it", tb.Name)
		}
		if w != g {
			t.Errorf("table %s: source %d rows %s, target %d rows %s", tb.Name, w.Rows, w.SHA, g.Rows, g.SHA)
		}
		if !strings.Contains(out, tb.Name) {
			t.Errorf("migrate output does not list table %s", tb.Name)
		}
	}
	// The target works as a store: a machine's session, its next-boot
	// choice, the run's events, the audit chain, binary settings.
	if bs, err := dst.BootState(t.Context(), "dev-1"); err != nil || bs.NextBoot != deploy.NextBootLocal {
		t.Errorf("boot state of dev-1 on the target = %+v, %v; want next boot local", bs, err)
	}
	if s, err := dst.SessionByTokenHash(t.Context(), []byte{9, 0, 0xff}); err != nil || s.Generation != 2 {
		t.Errorf("session on the target = %+v, %v", s, err)
	}
	if v, err := dst.Setting(t.Context(), "binary"); err != nil || !bytes.Equal(v, []byte{0, 1, 0xfe, 0xff}) {
		t.Errorf("binary setting on the target = %x, %v", v, err)
	}
	events, err := dst.AuditEvents(t.Context(), 0, 0)
	if err != nil || len(events) != 5 {
		t.Fatalf("target audit = %d entries, %v", len(events), err)
	}
	if err := auth.Verify(events); err != nil {
		t.Errorf("target audit chain: %v", err)
	}
	// The chain goes on from where it was: the next entry links to the copied head.
	next := &deploy.AuditEvent{Action: "after.migrate", Outcome: "success"}
	if err := dst.AppendAudit(t.Context(), next); err != nil || next.Seq != 6 || next.PrevHash != events[4].Hash {
		t.Errorf("append after migrate: seq %d prev %.12s, %v; want seq 6 after %.12s", next.Seq, next.PrevHash, err, events[4].Hash)
	}

	// A hash of the canonical export sees a changed row.
	u, err := dst.User(t.Context(), "ada")
	if err != nil {
		t.Fatal(err)
	}
	u.Role = deploy.RoleViewer
	if err := dst.UpdateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if exports(t, dst.DB)["users"] == want["users"] {
		t.Errorf("changing a user's role left the users table's export hash as it was")
	}

	// Not empty now: refused, and nothing changed; --replace copies again.
	code, out = migrate(t, "--from", "sqlite:"+dir, "--to", dsn)
	if code != 1 || !strings.Contains(out, "not empty") {
		t.Errorf("migrate into a full database: exit %d, want 1 naming it not empty:\n%s", code, out)
	}
	if got := exports(t, dst.DB)["audit"]; got.Rows != 6 {
		t.Errorf("refused migrate changed the target: audit has %d rows, want 6", got.Rows)
	}
	code, out = migrate(t, "--from", "sqlite:"+dir, "--to", dsn, "--replace")
	if code != 0 {
		t.Fatalf("migrate --replace: exit %d:\n%s", code, out)
	}
	if got := exports(t, dst.DB); got["users"] != want["users"] || got["audit"] != want["audit"] {
		t.Errorf("after --replace the target differs from the source: users %+v audit %+v", got["users"], got["audit"])
	}
}

// TestMigrateBadInput: usage errors and a missing source are refused
// clearly, without creating a database at the source.
func TestMigrateBadInput(t *testing.T) {
	empty := t.TempDir()
	for _, tt := range []struct {
		args     []string
		code     int
		contains string
	}{
		{nil, 2, "--from is required, with --to, --content-to or both"},
		{[]string{"--from", "sqlite:" + empty}, 2, "--from is required, with --to, --content-to or both"},
		{[]string{"--from", "mysql://x", "--to", "postgres://u@127.0.0.1:1/db"}, 2, "neither sqlite:DIR nor a postgres:// URL"},
		{[]string{"--from", "sqlite:" + empty, "--to", "postgres://u@127.0.0.1:1/db"}, 1, "no database at"},
		{[]string{"--from", "sqlite:" + empty, "--to", "sqlite:" + empty}, 2, "same database"},
	} {
		code, out := migrate(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.contains) {
			t.Errorf("migrate %q: exit %d, want %d with %q:\n%s", tt.args, code, tt.code, tt.contains, out)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, "imprint.db")); err == nil {
		t.Errorf("a refused migrate created a database in the source directory")
	}
}
