package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"time"

	"github.com/imprint-osd/imprint/internal/store/sqlstore"
	"github.com/imprint-osd/imprint/internal/store/storetest"
)

// SQL exposes the read pool to the black-box tests.
func (db *DB) SQL() *sql.DB { return db.rdb }

// GroupCommits returns how many commits carried more than one write, and
// how many writes they carried.
func (db *DB) GroupCommits() (commits, writes int64) {
	return db.w.batches.Load(), db.w.batched.Load()
}

// PreparedWrites returns the queries the writer keeps prepared.
func (db *DB) PreparedWrites() []string {
	db.w.mu.Lock()
	defer db.w.mu.Unlock()
	var qs []string
	for q, st := range db.w.stmts {
		if st != nil {
			qs = append(qs, q)
		}
	}
	return qs
}

// OpenAt creates the database at path with the schema only up to version,
// as an older imprint left it, and returns it without a store on top.
func OpenAt(ctx context.Context, path string, version int) (*sql.DB, error) {
	wdb, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(migrationFS, "migrations")
	if err == nil {
		sub, err = storetest.MigrationsUpTo(sub, version)
	}
	if err == nil {
		var conn *sql.Conn
		if conn, err = wdb.Conn(ctx); err == nil {
			err = sqlstore.Migrate(ctx, conn, dialect{}, sub, time.Now())
			conn.Close()
		}
	}
	if err != nil {
		wdb.Close()
		return nil, err
	}
	return wdb, nil
}
