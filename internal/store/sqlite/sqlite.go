package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var _ deploy.Store = (*DB)(nil)

// DB is the SQLite implementation of deploy.Store: the shared SQL layer
// (sqlstore) with SQLite's dialect, one writing connection behind the
// group-commit writer and a read pool. Create it with Open.
type DB struct {
	*sqlstore.DB
	rdb *sql.DB // readers: a bounded pool that keeps its connections
	w   *writer // the one writing connection
	// stopCheckpoint ends the checkpoint goroutine, which closes
	// checkpointDone.
	stopCheckpoint, checkpointDone chan struct{}
	closeOnce                      sync.Once
	closeErr                       error
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
	fail := func(err error) (*DB, error) {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := migrate(ctx, wdb); err != nil {
		return fail(err)
	}
	db := &DB{rdb: rdb, w: newWriter(wdb)}
	// Reads are deferred transactions: WAL gives each one snapshot.
	if db.DB, err = sqlstore.New(ctx, sqlstore.Config{Pool: rdb,
		ReadOptions: &sql.TxOptions{ReadOnly: true}, Dialect: dialect{db.w}}); err != nil {
		db.w.close()
		rdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.stopCheckpoint = make(chan struct{})
	db.checkpointDone = make(chan struct{})
	go db.checkpoint()
	return db, nil
}

// migrate brings the schema up to date on the writing connection (the
// writer has not started yet); SQLite's write lock serializes concurrent
// Opens, and each migration checks again inside its transaction.
func migrate(ctx context.Context, wdb *sql.DB) error {
	conn, err := wdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return err
	}
	return sqlstore.Migrate(ctx, conn, dialect{}, sub, time.Now())
}

// dialect is SQLite's: '?' placeholders as they are, every write through
// the one writer (which also makes every read-modify-write one step, so
// locks need nothing more), and no unique violation that a check inside
// the same write does not see first.
type dialect struct{ w *writer }

func (dialect) Rebind(q string) string { return q }

func (d dialect) Write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return d.w.do(ctx, fn)
}

func (d dialect) WriteLocked(ctx context.Context, _ []sqlstore.Lock, fn func(context.Context, *sql.Tx) error) error {
	return d.w.do(ctx, fn)
}

func (dialect) IsUniqueViolation(error) bool { return false }

// WriteStmt is the query prepared on the writing connection, or nil
// (sqlstore.WriteStmts).
func (d dialect) WriteStmt(query string) *sql.Stmt {
	if d.w == nil {
		return nil
	}
	return d.w.stmt(query)
}

// readConns is the size of the read pool: readers in WAL mode do not block
// one another, and more connections than cores only add memory.
func readConns() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

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
			_, _ = db.rdb.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// Close closes the database. Closing it again does nothing more and
// returns the first Close's error, as database/sql's Close does.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stopCheckpoint)
		<-db.checkpointDone
		db.closeErr = errors.Join(db.w.close(), db.DB.Close(), db.rdb.Close())
	})
	return db.closeErr
}

// BootState is the shared store's, without the caller's cancellation.
// With a context that can end, the driver starts a goroutine per query to
// interrupt it, and installs a progress handler: that cost more than the
// read itself, a few key searches of a local file that every network
// boot makes. In WAL mode a read waits neither for the writer nor for
// the checkpointer; what loses the cancel is only the wait for one of the
// pool's connections, which the other reads hold for microseconds.
func (db *DB) BootState(ctx context.Context, deviceIDs ...string) (deploy.BootState, error) {
	return db.DB.BootState(context.WithoutCancel(ctx), deviceIDs...)
}
