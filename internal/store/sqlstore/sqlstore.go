package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Dialect is what an engine supplies: how a write transaction runs, how
// a read-modify-write is made one step for every process, how a query's
// placeholders are written and which error is a duplicate key.
type Dialect interface {
	// Rebind rewrites a query written with '?' placeholders into the
	// engine's own. No query of this package has a '?' anywhere else.
	Rebind(query string) string
	// Write runs fn in a write transaction and commits it; the writes of
	// every process behave as if run one at a time (SQLite: the one
	// writer; PostgreSQL: SERIALIZABLE, retried on a conflict, so fn may
	// run more than once and must only change its arguments in ways a
	// rerun overwrites). fn must use the context it is given.
	Write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error
	// WriteLocked is Write holding each of locks (taken in the order
	// given, the same order everywhere) from the transaction's start to
	// its end, so that a read-modify-write of what they name sees every
	// write committed before it. An engine with one writer has nothing
	// more to do than Write.
	WriteLocked(ctx context.Context, locks []Lock, fn func(context.Context, *sql.Tx) error) error
	// IsUniqueViolation reports whether err is a unique-key violation (a
	// concurrent insert of the same key), reported as KindConflict.
	IsUniqueViolation(err error) bool
}

// WriteStmts is implemented by a Dialect whose write transactions all run
// on one connection that keeps statements prepared across them (SQLite's
// writer): WriteStmt returns query (as rebound) prepared there, or nil
// when it is not, and the write then runs the query text. Preparing costs
// more than running most of the store's writes.
type WriteStmts interface {
	WriteStmt(query string) *sql.Stmt
}

// LockSpace separates the kinds of lock a write may hold.
type LockSpace int32

// The lock spaces (kept as the first key of PostgreSQL's advisory locks:
// do not renumber).
const (
	LockSettings LockSpace = 1 // Key: the setting's key
	LockAudit    LockSpace = 2 // Key: "chain"
	LockThrottle LockSpace = 3 // Key: the throttle key
	LockRun      LockSpace = 4 // Key: the run ID (appending its events)
)

// Lock names one thing a write holds for its whole transaction.
type Lock struct {
	Space LockSpace
	Key   string
}

// Config is what New needs from an adapter.
type Config struct {
	// Pool serves reads; it should keep its connections.
	Pool *sql.DB
	// ReadOptions are the options of read transactions (read-only, and
	// the isolation that gives one snapshot).
	ReadOptions *sql.TxOptions
	Dialect     Dialect
}

// DB implements deploy.Store on database/sql through a Dialect. The
// adapters (internal/store/sqlite, internal/store/postgres) open the
// connections, migrate the schema and embed it.
type DB struct {
	pool     *sql.DB
	readOpts *sql.TxOptions
	d        Dialect
	ws       WriteStmts // d's, if it keeps write statements prepared
	// hot are the reads every machine request makes, prepared once (the
	// pool keeps them prepared on each of its connections).
	hot struct {
		run, session *sql.Stmt
		// bootState[n-1] is BootState's query for n device ids (a
		// machine sends its UUID, its MAC or both).
		bootState [2]*sql.Stmt
	}
	// Now is the clock for timestamps the store sets itself (run and session
	// times, audit entries, content dates). Defaults to time.Now.
	Now func() time.Time
}

var _ deploy.Store = (*DB)(nil)

// New returns the store on an already migrated database. Close releases
// what New prepared; the adapter closes the pools.
func New(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Pool == nil || cfg.Dialect == nil {
		return nil, fmt.Errorf("sqlstore: pool and dialect are required")
	}
	db := &DB{pool: cfg.Pool, readOpts: cfg.ReadOptions, d: cfg.Dialect, Now: time.Now}
	db.ws, _ = cfg.Dialect.(WriteStmts)
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare statements: %w", err)
	}
	return db, nil
}

func (db *DB) prepare(ctx context.Context) error {
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = db.pool.PrepareContext(ctx, db.rebind(q))
		return s
	}
	db.hot.run = prep(`SELECT doc, updated_at FROM runs WHERE id = ?`)
	db.hot.session = prep(`SELECT token_hash, doc FROM sessions WHERE token_hash = ?`)
	for i := range db.hot.bootState {
		db.hot.bootState[i] = prep(BootStateQuery(i + 1))
	}
	return err
}

// Close releases the prepared statements (not the pool, which the
// adapter owns).
func (db *DB) Close() error {
	var errs []error
	for _, s := range []*sql.Stmt{db.hot.run, db.hot.session, db.hot.bootState[0], db.hot.bootState[1]} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
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

func (db *DB) rebind(q string) string { return db.d.Rebind(q) }

// Tx is a transaction whose queries are written with '?' placeholders.
type Tx struct {
	tx *sql.Tx
	d  Dialect
	ws WriteStmts // set in write transactions of a dialect that has them
}

// prepared returns query's statement kept prepared for this write
// transaction, or nil.
func (t *Tx) prepared(ctx context.Context, query string) *sql.Stmt {
	if t.ws == nil {
		return nil
	}
	if st := t.ws.WriteStmt(query); st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	return nil
}

// ExecContext runs a statement.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	q := t.d.Rebind(query)
	if st := t.prepared(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

// QueryContext runs a query.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := t.d.Rebind(query)
	if st := t.prepared(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

// QueryRowContext runs a query of at most one row.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	q := t.d.Rebind(query)
	if st := t.prepared(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// write runs fn in a write transaction (see Dialect.Write).
func (db *DB) write(ctx context.Context, fn func(context.Context, *Tx) error) error {
	return db.wrapDB(db.d.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return fn(ctx, &Tx{tx: tx, d: db.d, ws: db.ws})
	}))
}

// writeLocked runs fn in a write transaction holding locks (see
// Dialect.WriteLocked).
func (db *DB) writeLocked(ctx context.Context, locks []Lock, fn func(context.Context, *Tx) error) error {
	return db.wrapDB(db.d.WriteLocked(ctx, locks, func(ctx context.Context, tx *sql.Tx) error {
		return fn(ctx, &Tx{tx: tx, d: db.d, ws: db.ws})
	}))
}

// read runs fn in a read-only transaction: one consistent snapshot.
func (db *DB) read(ctx context.Context, fn func(*Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, db.readOpts)
	if err != nil {
		return db.wrapDB(err)
	}
	defer tx.Rollback()
	if err := fn(&Tx{tx: tx, d: db.d}); err != nil {
		return db.wrapDB(err)
	}
	return db.wrapDB(tx.Commit())
}

// wrapDB keeps domain errors and context errors as they are, reports a
// unique-key violation as KindConflict and turns any other database
// failure into a KindInternal error.
func (db *DB) wrapDB(err error) error {
	if err == nil {
		return nil
	}
	var de *deploy.Error
	if errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if db.d.IsUniqueViolation(err) {
		return deploy.Wrap(deploy.KindConflict, err, "already exists")
	}
	return deploy.Wrap(deploy.KindInternal, err, "database error")
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
func queryDocs[T any](ctx context.Context, tx *Tx, query string, args ...any) ([]*T, error) {
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

// getDoc decodes into v the one doc column query selects; missing makes
// the error for no row.
func getDoc(ctx context.Context, tx *Tx, v any, missing func() error, query string, args ...any) error {
	var doc string
	err := tx.QueryRowContext(ctx, query, args...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return missing()
	}
	if err != nil {
		return err
	}
	return decode(doc, v)
}

// exists reports whether query (a SELECT of one row) finds anything.
func exists(ctx context.Context, tx *Tx, query string, args ...any) (bool, error) {
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
