package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/imprint-osd/imprint/internal/store/sqlstore"
	"github.com/imprint-osd/imprint/internal/store/storetest"
)

// SQL exposes the underlying handle to the black-box tests.
func (db *DB) SQL() *sql.DB { return db.sdb }

// OpenAt brings the empty database dsn names to the schema only up to
// version, as an older imprint left it, and returns it without a store on
// top.
func OpenAt(ctx context.Context, dsn string, version int) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	sdb := stdlib.OpenDB(*cfg)
	sub, err := fs.Sub(migrationFS, "migrations")
	if err == nil {
		sub, err = storetest.MigrationsUpTo(sub, version)
	}
	if err == nil {
		var conn *sql.Conn
		if conn, err = sdb.Conn(ctx); err == nil {
			err = sqlstore.Migrate(ctx, conn, dialect{db: sdb}, sub, time.Now())
			conn.Close()
		}
	}
	if err != nil {
		sdb.Close()
		return nil, err
	}
	return sdb, nil
}
