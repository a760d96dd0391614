//go:build linux

package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/backup"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/server/servertest"
	"github.com/imprint-osd/imprint/internal/store/postgres"
	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
)

// writeLoad runs writers against the server at dir until stop: three
// that each create numbered content items in order, and one that adds a
// content version with new bytes and deletes the previous one (so blobs
// come and go while a backup runs). counts[g] is how many items writer g
// has created.
type writeLoad struct {
	counts [3]atomic.Int64
	blobs  atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

func startWriteLoad(t *testing.T, dir string) *writeLoad {
	t.Helper()
	c := client.NewAdmin(server.SocketPath(dir))
	ctx := context.Background()
	l := &writeLoad{stop: make(chan struct{})}
	fail := func(err error) {
		l.mu.Lock()
		if l.err == nil {
			l.err = err
		}
		l.mu.Unlock()
	}
	for g := range l.counts {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				_, err := c.CreateContentItem(ctx, deploy.ContentItem{Name: fmt.Sprintf("w%d-%04d", g, i),
					Type: deploy.ContentFile, Purpose: deploy.PurposeOther})
				if err != nil {
					fail(err)
					return
				}
				l.counts[g].Add(1)
			}
		})
	}
	item, err := c.CreateContentItem(ctx, deploy.ContentItem{Name: "churn", Type: deploy.ContentFile, Purpose: deploy.PurposeOther})
	if err != nil {
		t.Fatal(err)
	}
	l.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			body := bytes.Repeat([]byte(fmt.Sprintf("churn %d\n", i)), 2000)
			v, err := c.AddContentVersion(ctx, item.ID, deploy.ContentVersion{Status: deploy.StatusActive}, bytes.NewReader(body), "")
			if err != nil {
				fail(err)
				return
			}
			if v.VersionNo > 1 {
				if err := c.DeleteContentVersion(ctx, item.ID, v.VersionNo-1); err != nil {
					fail(err)
					return
				}
			}
			l.blobs.Add(1)
		}
	})
	return l
}

// waitFor blocks until every item writer has made at least n more
// writes than when called, and the blob writer too.
func (l *writeLoad) waitFor(t *testing.T, n int64) {
	t.Helper()
	var base [3]int64
	for g := range l.counts {
		base[g] = l.counts[g].Load()
	}
	bbase := l.blobs.Load()
	for {
		done := l.blobs.Load() >= bbase+n
		for g := range l.counts {
			done = done && l.counts[g].Load() >= base[g]+n
		}
		l.mu.Lock()
		err := l.err
		l.mu.Unlock()
		if err != nil {
			t.Fatalf("writer: %v", err)
		}
		if done {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *writeLoad) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if l.err != nil {
		t.Fatalf("writer: %v", l.err)
	}
}

// TestBackupRestoreUnderWriteLoad: a backup taken while writers create
// content items, upload and delete content, restores into a fresh data
// directory to exactly the snapshot's state: every table's rows and hash
// as the manifest recorded them, each writer's items a gap-free prefix of
// what it wrote, the audit log a prefix of the source's and its chain
// intact, the task sequences, step definitions, runs, devices and users
// as on the source, the CA the same, and every content version's bytes
// downloadable with their hash.
func TestBackupRestoreUnderWriteLoad(t *testing.T) {
	src := t.TempDir()
	seedSQLite(t, src) // a row in every table: runs, events, devices, next boots, sessions, users, throttle
	srv := servertest.Start(t, func(c *server.Config) { c.DataDir = src })
	ok(t, src, "stepdef", "import", compatFiles(t, "stepdefinitions")[0])
	ok(t, src, "ts", "import", compatFiles(t, "tasksequences")[0])
	blob := randomFile(t, filepath.Join(t.TempDir(), "app.msi"), 300_000)
	var app item
	okJSON(t, src, &app, "content", "add", "--name", "App", "--type", "File", "--purpose", "Application")
	f := filepath.Join(t.TempDir(), "app.msi")
	os.WriteFile(f, blob, 0o600)
	ok(t, src, "content", "version", app.ID, f)

	load := startWriteLoad(t, src)
	load.waitFor(t, 5)
	file := filepath.Join(t.TempDir(), "imprint.backup")
	out := ok(t, src, "backup", file, "--blobs")
	wantContains(t, "backup output", out, "mode 0600", "included")
	load.waitFor(t, 5) // writes went on after the snapshot
	load.end(t)
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode = %v, %v; want 0600", st.Mode(), err)
	}

	// The manifest, as the archive records it.
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backup.Read(fh, nil)
	fh.Close()
	if err != nil {
		t.Fatalf("the backup does not verify: %v", err)
	}
	if !m.BlobsIncluded || len(m.Blobs) < 2 {
		t.Errorf("manifest: blobs included %v, %d referenced; want the app and a churn version", m.BlobsIncluded, len(m.Blobs))
	}

	dst := filepath.Join(t.TempDir(), "restored")
	out = ok(t, dst, "restore", file)
	wantContains(t, "restore output", out, "match the backup", "audit chain of")

	// The restored database is the snapshot: every table as the manifest
	// recorded it when the snapshot was read.
	db, err := sqlite.Open(t.Context(), filepath.Join(dst, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Export(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Tables, got); diff != "" {
		t.Errorf("restored tables differ from the snapshot (-backup +restored):\n%s", diff)
	}
	restoredAudit, err := db.AuditEvents(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	restoredItems, err := db.ContentItems(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The operator's next-boot choice came back with its device.
	if nb, err := db.NextBoots(t.Context()); err != nil || !maps.Equal(nb, map[string]deploy.NextBoot{"dev-1": deploy.NextBootLocal}) {
		t.Errorf("next-boot choices after the restore = %v, %v; want dev-1 local", nb, err)
	}
	db.Close()
	// Across tables, one moment: each item created through the socket
	// is audited before (started) and after (success) its commit, so the
	// snapshot holds at least as many items as audited successes and at
	// most as many as audited starts (the seeded item was not created
	// through the socket). Reading the tables at different moments breaks
	// this: the audit table comes after the items.
	var started, succeeded int
	for _, e := range restoredAudit {
		if e.Action == "admin.request" && e.Details["method"] == "POST" && e.Details["path"] == "/admin/v1/content" {
			switch e.Outcome {
			case "started":
				started++
			case "success":
				succeeded++
			}
		}
	}
	if n := len(restoredItems) - 1; n < succeeded || n > started {
		t.Errorf("snapshot holds %d created items, its audit %d creations started and %d succeeded: not one moment", n, started, succeeded)
	}
	for _, s := range got {
		if s.Rows == 0 {
			t.Errorf("table %s is empty after the restore: the test does not cover it", s.Table)
		}
	}

	sc := client.NewAdmin(server.SocketPath(src))
	srcAudit, err := sc.AuditEvents(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(restoredAudit) == 0 || len(restoredAudit) >= len(srcAudit) {
		t.Errorf("restored audit has %d entries, source %d: want a proper prefix (writes went on)", len(restoredAudit), len(srcAudit))
	}
	for i, e := range restoredAudit {
		if i < len(srcAudit) && (e.Seq != srcAudit[i].Seq || e.Hash != srcAudit[i].Hash) {
			t.Fatalf("restored audit entry %d (seq %d) differs from the source's", i, e.Seq)
		}
	}

	restored := servertest.Start(t, func(c *server.Config) { c.DataDir = dst })
	rc := client.NewAdmin(server.SocketPath(dst))
	if restored.CAFingerprint() != srv.CAFingerprint() {
		t.Errorf("the restored server has another CA: machines would not trust it")
	}
	if n, err := rc.VerifyAudit(t.Context()); err != nil || n <= len(restoredAudit) {
		t.Errorf("restored audit verify: %d entries, %v", n, err)
	}

	// Each writer's items are a gap-free prefix: the snapshot saw its
	// writes up to one point and none after it.
	items, err := rc.ContentItems(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	per := [3]map[string]bool{{}, {}, {}}
	for _, it := range items {
		var g, i int
		if _, err := fmt.Sscanf(it.Name, "w%d-%d", &g, &i); err == nil && g < 3 {
			per[g][it.Name] = true
		}
	}
	for g := range per {
		k := len(per[g])
		for i := range k {
			if !per[g][fmt.Sprintf("w%d-%04d", g, i)] {
				t.Errorf("writer %d: restored %d items but not w%d-%04d: not one snapshot", g, k, g, i)
			}
		}
		t.Logf("writer %d: %d of %d items in the snapshot", g, k, load.counts[g].Load())
		if k < 5 || int64(k) >= load.counts[g].Load() {
			t.Errorf("writer %d: restored %d of its %d items; want at least 5 and fewer than all", g, k, load.counts[g].Load())
		}
	}

	// What nobody wrote during the backup is as on the source.
	same := func(what string, get func(*client.Admin) (any, error)) {
		t.Helper()
		a, err := get(sc)
		if err != nil {
			t.Fatalf("%s on the source: %v", what, err)
		}
		b, err := get(rc)
		if err != nil {
			t.Fatalf("%s on the restored server: %v", what, err)
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("%s differ (-source +restored):\n%s", what, diff)
		}
	}
	same("task sequences", func(c *client.Admin) (any, error) { return c.TaskSequences(t.Context()) })
	same("step definitions", func(c *client.Admin) (any, error) { return c.StepDefinitions(t.Context()) })
	same("runs", func(c *client.Admin) (any, error) { return c.Runs(t.Context(), client.RunFilter{}) })
	same("users", func(c *client.Admin) (any, error) { return c.Users(t.Context()) })
	same("app item", func(c *client.Admin) (any, error) { return c.ContentItem(t.Context(), app.ID) })

	// --blobs: every version with content downloads with its hash.
	checked := 0
	for _, it := range items {
		full, err := rc.ContentItem(t.Context(), it.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range full.Versions {
			if v.SHA256 == "" || v.AwaitingContent || slices.Contains(m.MissingBlobs, v.SHA256) {
				continue
			}
			var buf bytes.Buffer
			if _, err := rc.DownloadContentVersion(t.Context(), it.ID, v.VersionNo, &buf); err != nil {
				t.Errorf("download %s v%d from the restored server: %v", it.Name, v.VersionNo, err)
				continue
			}
			if h := sha256.Sum256(buf.Bytes()); hex.EncodeToString(h[:]) != v.SHA256 {
				t.Errorf("%s v%d: downloaded bytes hash to %x, want %s", it.Name, v.VersionNo, h, v.SHA256)
			}
			checked++
		}
	}
	t.Logf("audit: %d of %d entries in the snapshot; %d downloads checked; manifest %d blobs (%d missing)",
		len(restoredAudit), len(srcAudit), checked, len(m.Blobs), len(m.MissingBlobs))
	if checked < 2 {
		t.Errorf("checked %d downloads, want the app and the churn version", checked)
	}
}

// TestRestoreRefuses: a damaged or truncated backup, a live server and a
// target holding data are refused with a clear error, and nothing is
// written.
func TestRestoreRefuses(t *testing.T) {
	src := startServer(t)
	file := filepath.Join(t.TempDir(), "b.backup")
	ok(t, src, "backup", file)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	events, err := client.NewAdmin(server.SocketPath(src)).AuditEvents(t.Context(), 0, 0)
	if err != nil || len(events) == 0 || events[len(events)-1].Action != "sys.backup" {
		t.Errorf("the backup is not the last audit entry: %d entries, %v", len(events), err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	for _, tt := range []struct {
		name, file, want string
	}{
		{"flipped byte", write("flip", flipped), "damaged"},
		{"truncated", write("trunc", good[:len(good)*2/3]), "damaged"},
		{"not a backup", write("junk", []byte("hello")), "damaged"},
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "d")
			r := imprint(t, dst, nil, "restore", tt.file)
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("restore: exit %d, want 1 with %q:\n%s", r.code, tt.want, r.stderr)
			}
			if _, err := os.Stat(dst); err == nil {
				t.Errorf("a refused restore created %s", dst)
			}
		})
	}

	r := imprint(t, src, nil, "restore", file)
	if r.code != 1 || !strings.Contains(r.stderr, "a server is running") {
		t.Errorf("restore over a live server: exit %d:\n%s", r.code, r.stderr)
	}

	dst := filepath.Join(t.TempDir(), "d")
	ok(t, dst, "restore", file)
	r = imprint(t, dst, nil, "restore", file)
	if r.code != 1 || !strings.Contains(r.stderr, "--replace") {
		t.Errorf("restore into a restored directory: exit %d, want a refusal naming --replace:\n%s", r.code, r.stderr)
	}
	ok(t, dst, "restore", file, "--replace")
}

// TestBackupDumpSchemaMismatch: a dump loads into a store of the same
// schema and nowhere else, and one cut short loads nothing.
func TestBackupDumpSchemaMismatch(t *testing.T) {
	dir := t.TempDir()
	seedSQLite(t, dir)
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dump bytes.Buffer
	if _, err := db.Dump(t.Context(), &dump); err != nil {
		t.Fatal(err)
	}
	other, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	bad := bytes.Replace(dump.Bytes(), []byte(`"schema":`), []byte(`"schema":9`), 1)
	if _, err := other.Load(t.Context(), bytes.NewReader(bad), sqlstore.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Errorf("load of another schema's dump: %v", err)
	}
	// A dump cut short loads nothing.
	cut := dump.Bytes()[:dump.Len()-40]
	if _, err := other.Load(t.Context(), bytes.NewReader(cut), sqlstore.LoadOptions{}); err == nil {
		t.Errorf("a truncated dump loaded")
	}
	sums, err := other.Export(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sums {
		if s.Rows != 0 {
			t.Errorf("a failed load left %d rows in %s", s.Rows, s.Table)
		}
	}
	if _, err := other.Load(t.Context(), bytes.NewReader(dump.Bytes()), sqlstore.LoadOptions{}); err != nil {
		t.Errorf("the whole dump does not load: %v", err)
	}
}

// TestBackupPostgres: a server on PostgreSQL is backed up through the
// same snapshot dump (one REPEATABLE READ transaction), and its backup
// restores into SQLite; a SQLite server's backup restores into
// PostgreSQL. Both end with every table as the snapshot recorded it.
func TestBackupPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	seeded := t.TempDir()
	seedSQLite(t, seeded)

	// SQLite server -> backup -> PostgreSQL.
	srcDir := t.TempDir()
	seedSQLite(t, srcDir)
	servertest.Start(t, func(c *server.Config) { c.DataDir = srcDir })
	file := filepath.Join(t.TempDir(), "sqlite.backup")
	ok(t, srcDir, "backup", file)
	m := manifestOf(t, file)
	dsn := pg.NewDatabase(t)
	ok(t, filepath.Join(t.TempDir(), "pgdir"), "restore", file, "--db", dsn)
	pdb, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pdb.Export(t.Context())
	pdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Tables, got); diff != "" {
		t.Errorf("PostgreSQL restore differs from the SQLite snapshot (-backup +restored):\n%s", diff)
	}

	// PostgreSQL server -> backup -> SQLite.
	dsn2 := pg.NewDatabase(t)
	code, out := migrate(t, "--from", "sqlite:"+seeded, "--to", dsn2)
	if code != 0 {
		t.Fatalf("migrate: %s", out)
	}
	store, err := postgres.Open(t.Context(), dsn2)
	if err != nil {
		t.Fatal(err)
	}
	pgDir := t.TempDir()
	servertest.StartDeps(t, func(c *server.Config) { c.DataDir = pgDir }, server.Deps{Store: store})
	file2 := filepath.Join(t.TempDir(), "pg.backup")
	ok(t, pgDir, "backup", file2)
	m2 := manifestOf(t, file2)
	dst := filepath.Join(t.TempDir(), "sqlite")
	ok(t, dst, "restore", file2)
	sdb, err := sqlite.Open(t.Context(), filepath.Join(dst, "imprint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	got2, err := sdb.Export(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m2.Tables, got2); diff != "" {
		t.Errorf("SQLite restore differs from the PostgreSQL snapshot (-backup +restored):\n%s", diff)
	}
	for _, s := range got2 {
		if s.Rows == 0 {
			t.Errorf("table %s empty: the test does not cover it", s.Table)
		}
	}
}

func manifestOf(t *testing.T, file string) *backup.Manifest {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := backup.Read(f, nil)
	if err != nil {
		t.Fatalf("%s does not verify: %v", file, err)
	}
	return m
}
