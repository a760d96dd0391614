//go:build linux

package postgres_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/postgres"
	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
	"github.com/imprint-osd/imprint/internal/store/storetest"
)

// TestMigrations opens several stores at once on an empty database, as
// replicas starting together do: each migration is applied once, every
// Open succeeds, and a reopen keeps the data and applies nothing again.
func TestMigrations(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	const n = 4
	dbs := make([]*postgres.DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = postgres.Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent Open %d: %v", i, errs[i])
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	db := dbs[0]
	storetest.CheckSchema(t, db, db.SQL())
	var tables []string
	for _, tb := range sqlstore.Tables() {
		tables = append(tables, tb.Name)
	}
	storetest.CheckTablesListed(t, db.SQL(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`, tables)
	if err := db.PutSetting(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	again := openDSN(t, dsn)
	if got, err := again.Setting(t.Context(), "k"); err != nil || string(got) != "v" {
		t.Errorf("Setting after reopen = %q, %v; want v", got, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	db := openDSN(t, dsn)
	known, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 'later')`, known+4); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(t.Context(), dsn)
	if deploy.ErrorKind(err) != deploy.KindConflict || !strings.Contains(err.Error(), "newer than this imprint knows") {
		t.Fatalf("Open of a newer schema: err = %v, want KindConflict naming the newer schema", err)
	}
}

// TestOpenErrors: a bad address is refused before connecting, and no
// message carries the password.
func TestOpenErrors(t *testing.T) {
	for _, dsn := range []string{
		"postgres://imprint:hunter2@[::1/imprint",                          // unparsable
		"postgres://imprint:hunter2@127.0.0.1:1/imprint?connect_timeout=2", // nothing listens
		"host=127.0.0.1 port=1 user=imprint password=hunter2 connect_timeout=2",
	} {
		_, err := postgres.Open(t.Context(), dsn)
		if err == nil {
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): error %q shows the password", dsn, err)
		}
	}
}

// TestNextBootMigration: a database of an imprint that kept the
// next-boot choices in one setting keeps them, in their table, once
// opened by this one; the setting is gone, and an unreadable one moves
// nothing and fails nothing.
func TestNextBootMigration(t *testing.T) {
	srv := pgtest.Start(t)
	for i, tc := range storetest.NextBootMigrations {
		t.Run(tc.Name, func(t *testing.T) {
			dsn := srv.NewDatabase(t)
			old, err := postgres.OpenAt(t.Context(), dsn, storetest.NextBootTableVersion-1)
			if err != nil {
				t.Fatal(err)
			}
			_, err = old.Exec(`INSERT INTO settings (key, value) VALUES ($1, $2)`, storetest.NextBootSettingKey, tc.Setting)
			old.Close()
			if err != nil {
				t.Fatal(err)
			}
			storetest.CheckNextBootsMigrated(t, openDSN(t, dsn), i)
		})
	}
}
