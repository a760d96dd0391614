package postgres

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/imprint-osd/imprint/internal/deploy"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var _ deploy.Store = (*DB)(nil)

// DB is the PostgreSQL implementation of deploy.Store. Create it with Open.
type DB struct {
	db *sql.DB
	// Now is the clock for timestamps the store sets itself (run and session
	// times, audit entries, content dates). Defaults to time.Now.
	Now func() time.Time
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
	db := &DB{db: sdb, Now: time.Now}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open store %s: %w", Redact(dsn), err)
	}
	return db, nil
}

// Close closes the connection pool.
func (db *DB) Close() error { return db.db.Close() }

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", base)
		}
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate applies every embedded migration the database lacks, each in its
// own transaction together with its schema_migrations row, on one
// connection holding the migration advisory lock: replicas starting at
// once wait for each other instead of racing on CREATE TABLE.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    bigint PRIMARY KEY,
		applied_at text   NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	known := 0
	if len(ms) > 0 {
		known = ms[len(ms)-1].version
	}
	var current sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	if int(current.Int64) > known {
		return deploy.Errorf(deploy.KindConflict,
			"database schema version %d is newer than this imprint knows (%d); upgrade imprint", current.Int64, known)
	}
	for _, m := range ms {
		if m.version <= int(current.Int64) {
			continue
		}
		if err := db.apply(ctx, conn, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
		m.version, db.now().Format(time.RFC3339Nano)); err != nil {
		return err
	}
	return tx.Commit()
}

// SchemaVersion returns the highest migration version the database records
// (0 for an empty database).
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := db.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return int(v.Int64), nil
}

// now returns the store clock in UTC, at the microsecond precision that
// the time columns keep.
func (db *DB) now() time.Time {
	f := db.Now
	if f == nil {
		f = time.Now
	}
	return f().UTC().Truncate(time.Microsecond)
}

// maxAttempts bounds the retries of a write that lost a serialization
// conflict to another transaction (another replica or goroutine).
const maxAttempts = 20

// write runs fn in a SERIALIZABLE transaction and commits it, running it
// again when PostgreSQL reports a serialization failure or deadlock; fn
// must therefore only change its arguments in ways a rerun overwrites.
func (db *DB) write(ctx context.Context, fn func(txn) error) error {
	return db.retry(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}, fn)
}

// writeLocked runs fn in a READ COMMITTED transaction that first takes the
// transaction-scoped advisory lock (k1, k2): each statement after the lock
// sees everything committed before it, so fn's read-modify-write is one
// step for every process that takes the same lock.
func (db *DB) writeLocked(ctx context.Context, k1 int32, k2 string, fn func(txn) error) error {
	return db.retry(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}, func(tx txn) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?, hashtext(?))`, k1, k2); err != nil {
			return err
		}
		return fn(tx)
	})
}

func (db *DB) retry(ctx context.Context, opts *sql.TxOptions, fn func(txn) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = db.once(ctx, opts, fn)
		if !retryable(err) || attempt == maxAttempts {
			break
		}
		// Back off a little, more each time, so that the transactions
		// that collided do not collide again in lockstep.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
	return wrapDB(err)
}

func (db *DB) once(ctx context.Context, opts *sql.TxOptions, fn func(txn) error) error {
	tx, err := db.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(txn{tx}); err != nil {
		return err
	}
	return tx.Commit()
}

// read runs fn in a read-only REPEATABLE READ transaction: one consistent
// snapshot.
func (db *DB) read(ctx context.Context, fn func(txn) error) error {
	tx, err := db.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return wrapDB(err)
	}
	defer tx.Rollback()
	if err := fn(txn{tx}); err != nil {
		return wrapDB(err)
	}
	return wrapDB(tx.Commit())
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

// wrapDB keeps domain errors and context errors as they are, reports a
// unique-key violation (a concurrent insert of the same key) as
// KindConflict and turns any other database failure into KindInternal.
func wrapDB(err error) error {
	if err == nil {
		return nil
	}
	var de *deploy.Error
	if errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if pgCode(err) == codeUniqueViolation {
		return deploy.Wrap(deploy.KindConflict, err, "already exists")
	}
	return deploy.Wrap(deploy.KindInternal, err, "database error")
}

// txn is a transaction whose queries are written with SQLite-style '?'
// placeholders (as in the SQLite store, so the two read alike); it
// rewrites them to PostgreSQL's $1, $2… No query of this package has a
// '?' anywhere else.
type txn struct{ *sql.Tx }

func (t txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, rebind(query), args...)
}

func (t txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, rebind(query), args...)
}

func (t txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, rebind(query), args...)
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

// newID returns a fresh lowercase GUID.
func newID() string { return uuid.NewString() }

// micros is the column form of a time: Unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// encode marshals a document for a doc column.
func encode(v any) (string, error) {
	b, err := deploy.EncodeJSON(v)
	if err != nil {
		return "", fmt.Errorf("encode document: %w", err)
	}
	return string(b), nil
}

// decode unmarshals a doc column.
func decode(s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("decode document: %w", err)
	}
	return nil
}

// queryDocs runs query (selecting one doc column) and decodes every row
// into a new T.
func queryDocs[T any](ctx context.Context, tx txn, query string, args ...any) ([]*T, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		v := new(T)
		if err := decode(doc, v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// exists reports whether query (a SELECT of one row) finds anything.
func exists(ctx context.Context, tx txn, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// errNotFound is the error for a document addressed by id.
func errNotFound(what, id string) error {
	return deploy.Errorf(deploy.KindNotFound, "%s %s not found", what, id)
}
