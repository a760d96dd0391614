package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/imprint-osd/imprint/internal/deploy"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var _ deploy.Store = (*DB)(nil)

// DB is the SQLite implementation of deploy.Store. Create it with Open.
type DB struct {
	db *sql.DB // readers: a bounded pool that keeps its connections
	w  *writer // the one writing connection
	// hot are the reads every machine request makes, prepared once (the
	// pool keeps them prepared on each of its connections).
	hot struct {
		run, session *sql.Stmt
		// lastRun[n-1] is LastRunState's query for n device ids (a
		// machine sends its UUID, its MAC or both).
		lastRun [2]*sql.Stmt
	}
	// stopCheckpoint ends the checkpoint goroutine, which closes
	// checkpointDone.
	stopCheckpoint, checkpointDone chan struct{}
	closeOnce                      sync.Once
	closeErr                       error
	// Now is the clock for timestamps the store sets itself (run and session
	// times, audit entries, content dates). Defaults to time.Now.
	Now func() time.Time
}

// dsnParams apply to every connection: WAL, foreign keys, a busy timeout,
// full sync, temporary data (the writer's savepoint journals) in memory,
// and no checkpoint inside a commit (the checkpointer does it beside the
// writer, see checkpoint); write transactions begin IMMEDIATE so that they never fail
// upgrading a read lock to a write lock.
const dsnParams = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)" +
	"&_pragma=wal_autocheckpoint(0)&_txlock=immediate"

// dsn returns the modernc.org/sqlite data source name Open uses for path.
// The path is given without "file:" so that SQLite does not URI-decode it.
func dsn(path string) string { return path + dsnParams }

// Open opens (creating if needed) the database at path and brings its schema
// up to date. It refuses, with a KindConflict error, a database whose schema
// is newer than the migrations embedded in this binary.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("open store: database path is empty")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open store: database path %q must not contain '?' or '#'", path)
	}
	wdb, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	rdb, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	// Opening a connection costs far more than a short read (the schema
	// is parsed, the pragmas run): the pool keeps what it opens.
	n := readConns()
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	rdb.SetConnMaxLifetime(0)
	rdb.SetConnMaxIdleTime(0)
	db := &DB{db: rdb, Now: time.Now}
	if err := db.migrate(ctx, wdb); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := db.prepare(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.w = newWriter(wdb)
	db.stopCheckpoint = make(chan struct{})
	db.checkpointDone = make(chan struct{})
	go db.checkpoint()
	return db, nil
}

// readConns is the size of the read pool: readers in WAL mode do not block
// one another, and more connections than cores only add memory.
func readConns() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

func (db *DB) prepare(ctx context.Context) error {
	var err error
	if db.hot.run, err = db.db.PrepareContext(ctx, `SELECT doc, updated_at FROM runs WHERE id = ?`); err != nil {
		return err
	}
	if db.hot.session, err = db.db.PrepareContext(ctx, `SELECT token_hash, doc FROM sessions WHERE token_hash = ?`); err != nil {
		return err
	}
	for i := range db.hot.lastRun {
		if db.hot.lastRun[i], err = db.db.PrepareContext(ctx, lastRunQuery(i+1)); err != nil {
			return err
		}
	}
	return nil
}

// checkpointEvery is how often the WAL is copied back into the database.
const checkpointEvery = 500 * time.Millisecond

// checkpoint copies the WAL back into the database file, PASSIVE (never
// waiting for readers or the writer), from a read connection: a
// checkpoint inside the writer's commit would hold every waiting machine
// for its copy and fsync.
func (db *DB) checkpoint() {
	defer close(db.checkpointDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-db.stopCheckpoint:
			return
		case <-t.C:
			_, _ = db.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// Close closes the database. Closing it again does nothing more and
// returns the first Close's error, as database/sql's Close does.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stopCheckpoint)
		<-db.checkpointDone
		db.closeErr = errors.Join(db.w.close(), db.hot.run.Close(), db.hot.session.Close(),
			db.hot.lastRun[0].Close(), db.hot.lastRun[1].Close(), db.db.Close())
	})
	return db.closeErr
}

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
// own transaction together with its schema_migrations row.
func (db *DB) migrate(ctx context.Context, wdb *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if _, err := wdb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	known := 0
	if len(ms) > 0 {
		known = ms[len(ms)-1].version
	}
	current, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if current > known {
		return deploy.Errorf(deploy.KindConflict,
			"database schema version %d is newer than this imprint knows (%d); upgrade imprint", current, known)
	}
	for _, m := range ms {
		if err := db.apply(ctx, wdb, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, wdb *sql.DB, m migration) error {
	tx, err := wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 { // applied before, or by a concurrent Open
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
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

// write runs fn through the writer: in a transaction, committed (possibly
// together with other writes waiting at the same time) before it returns.
// fn must use the context it is given, not its caller's.
func (db *DB) write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return wrapDB(db.w.do(ctx, fn))
}

// read runs fn in a deferred, read-only transaction: one consistent snapshot.
func (db *DB) read(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return wrapDB(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return wrapDB(err)
	}
	return wrapDB(tx.Commit())
}

// wrapDB keeps domain errors and context errors as they are and turns any
// other database failure into a KindInternal error.
func wrapDB(err error) error {
	if err == nil {
		return nil
	}
	var de *deploy.Error
	if errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
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
func queryDocs[T any](ctx context.Context, tx *sql.Tx, query string, args ...any) ([]*T, error) {
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
func exists(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
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
