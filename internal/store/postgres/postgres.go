package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var (
	_ deploy.Store      = (*DB)(nil)
	_ deploy.RunWatcher = (*DB)(nil)
)

// DB is the PostgreSQL implementation of deploy.Store: the shared SQL
// layer (sqlstore) with PostgreSQL's dialect. Create it with Open.
type DB struct {
	*sqlstore.DB
	sdb *sql.DB
	cfg *pgx.ConnConfig // for WatchRuns' own connection
	n   *notifier       // announces run changes (notify.go)
}

// Pool limits: a replica holds at most maxConns connections, so that
// several replicas stay well inside PostgreSQL's default max_connections
// (100), and keeps them open between requests.
const (
	maxConns     = 16
	maxIdleConns = 16
)

// migrationLock is the session advisory lock key held while migrating
// (arbitrary, fixed: "imprint" in ASCII).
const migrationLock int64 = 0x696d7072696e74

// IsDSN reports whether s names a PostgreSQL database (a postgres:// or
// postgresql:// URL), as --db takes it.
func IsDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns dsn with any password replaced, for messages and logs.
// A key=value connection string is not echoed at all; anything else that
// is no URL (a file path given by mistake) is echoed as it is.
func Redact(dsn string) string {
	if !strings.Contains(dsn, "://") {
		if strings.Contains(dsn, "=") {
			return "postgres database (key=value address)"
		}
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres database (unparsable address)"
	}
	return u.Redacted()
}

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value connection string, as pgx takes it) and brings its schema up
// to date. It refuses, with a KindConflict error, a database whose schema
// is newer than the migrations embedded in this binary.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, deploy.Wrap(deploy.KindInvalid, err, "open store: bad postgres address")
	}
	sdb := stdlib.OpenDB(*cfg)
	sdb.SetMaxOpenConns(maxConns)
	sdb.SetMaxIdleConns(maxIdleConns)
	d := dialect{db: sdb}
	if err := migrate(ctx, sdb, d); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open store %s: %w", Redact(dsn), err)
	}
	st, err := sqlstore.New(ctx, sqlstore.Config{Pool: sdb,
		ReadOptions: &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, Dialect: d})
	if err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open store %s: %w", Redact(dsn), err)
	}
	return &DB{DB: st, sdb: sdb, cfg: cfg, n: newNotifier(sdb)}, nil
}

// Close sends the run changes not yet announced and closes the
// connection pool.
func (db *DB) Close() error {
	db.n.close()
	return errors.Join(db.DB.Close(), db.sdb.Close())
}

// migrate applies the embedded migrations on one connection holding the
// migration advisory lock: replicas starting at once wait for each other
// instead of racing on CREATE TABLE.
func migrate(ctx context.Context, sdb *sql.DB, d dialect) error {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return err
	}
	conn, err := sdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	return sqlstore.Migrate(ctx, conn, d, sub, time.Now())
}

// dialect is PostgreSQL's: $n placeholders, SERIALIZABLE writes retried
// on a serialization failure or deadlock, transaction-scoped advisory
// locks for the read-modify-writes that must be one step across replicas
// (settings, the audit chain, the throttle counts), and SQLSTATE 23505 as
// a conflict.
type dialect struct{ db *sql.DB }

func (dialect) Rebind(q string) string { return rebind(q) }

func (d dialect) IsUniqueViolation(err error) bool { return pgCode(err) == codeUniqueViolation }

// maxAttempts bounds the retries of a write that lost a serialization
// conflict to another transaction (another replica or goroutine).
const maxAttempts = 20

// Write runs fn in a SERIALIZABLE transaction and commits it, running it
// again when PostgreSQL reports a serialization failure or deadlock.
func (d dialect) Write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return d.retry(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}, fn)
}

// WriteLocked runs fn in a READ COMMITTED transaction that first takes the
// transaction-scoped advisory locks: each statement after them sees
// everything committed before it, so fn's read-modify-write is one step
// for every process that takes the same locks.
func (d dialect) WriteLocked(ctx context.Context, locks []sqlstore.Lock, fn func(context.Context, *sql.Tx) error) error {
	return d.retry(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}, func(ctx context.Context, tx *sql.Tx) error {
		for _, l := range locks {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(l.Space), l.Key); err != nil {
				return err
			}
		}
		return fn(ctx, tx)
	})
}

func (d dialect) retry(ctx context.Context, opts *sql.TxOptions, fn func(context.Context, *sql.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = d.once(ctx, opts, fn)
		if !retryable(err) || attempt == maxAttempts {
			return err
		}
		// Back off a little, more each time, so that the transactions
		// that collided do not collide again in lockstep.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

func (d dialect) once(ctx context.Context, opts *sql.TxOptions, fn func(context.Context, *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// PostgreSQL error codes the store handles.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func retryable(err error) bool {
	c := pgCode(err)
	return c == codeSerializationFailure || c == codeDeadlockDetected
}

// rebind replaces each '?' in query with $n, counting from 1.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
