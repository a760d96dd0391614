package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
)

// maxBatch bounds how many writes share one transaction, so that one
// commit's latency stays bounded however many callers wait.
const maxBatch = 512

// maxStmts bounds the statements the writer keeps prepared. The store's
// queries are constants, but a few are built for their argument count.
const maxStmts = 256

// errClosed answers a write that arrives after Close.
var errClosed = errors.New("database is closed")

// writer owns the one connection that writes. SQLite lets one writer in at
// a time anyway; a pool of connections competing for that lock only adds
// busy-wait sleeps and "database is locked" after the busy timeout. Every
// write waiting when the writer comes round is run in one transaction,
// each inside its own savepoint so that a write that fails undoes only its
// own changes, and the batch is committed once: one fsync for all of them
// (group commit). A caller is answered only after that commit.
type writer struct {
	db      *sql.DB // at most one connection
	queue   chan *writeReq
	done    chan struct{} // closed by close: take no more work
	stopped chan struct{} // closed when the loop has returned
	// batches and batched count the shared commits and the writes they
	// carried.
	batches, batched atomic.Int64

	// stmts are the write statements kept prepared on the one connection:
	// preparing (parsing SQL, planning) cost more than running most of
	// them. A query seen for the first time runs unprepared and is added
	// to want; the loop prepares it between batches, when the connection
	// is free (database/sql cannot prepare on a connection inside a
	// transaction for later use).
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	want  map[string]bool
}

type writeReq struct {
	ctx context.Context
	fn  func(context.Context, *sql.Tx) error
	err chan error // buffered: the loop never blocks answering
}

func newWriter(db *sql.DB) *writer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	w := &writer{db: db, queue: make(chan *writeReq, maxBatch),
		done: make(chan struct{}), stopped: make(chan struct{}),
		stmts: map[string]*sql.Stmt{}, want: map[string]bool{}}
	go w.loop()
	return w
}

// do runs fn in a write transaction and returns its error, or the
// commit's. fn gets a context that is not canceled with ctx: once a write
// is in a batch it runs to the end, since canceling a statement can abort
// the whole shared transaction. A ctx canceled before fn starts skips it.
func (w *writer) do(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeReq{ctx: ctx, fn: fn, err: make(chan error, 1)}
	select {
	case w.queue <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.done:
		return errClosed
	}
	select {
	case err := <-req.err:
		return err
	case <-w.stopped:
		select { // answered just before the loop returned
		case err := <-req.err:
			return err
		default:
			return errClosed
		}
	}
}

// close lets the batch in progress finish, refuses what is still queued
// and closes the connection.
func (w *writer) close() error {
	close(w.done)
	<-w.stopped
	for _, st := range w.stmts {
		if st != nil {
			st.Close()
		}
	}
	return w.db.Close()
}

func (w *writer) loop() {
	defer close(w.stopped)
	for {
		var first *writeReq
		select {
		case first = <-w.queue:
		case <-w.done:
			for {
				select {
				case r := <-w.queue:
					r.err <- errClosed
				default:
					return
				}
			}
		}
		batch := []*writeReq{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-w.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.run(batch)
		w.prepareWanted()
	}
}

// stmt returns query prepared on the writing connection, or nil when it
// is not yet (it will be after this batch). Only write transactions of
// this writer may use it (Tx.StmtContext).
func (w *writer) stmt(query string) *sql.Stmt {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, seen := w.stmts[query]
	if !seen && len(w.stmts)+len(w.want) < maxStmts {
		w.want[query] = true
	}
	return st
}

// prepareWanted prepares the queries stmt was asked for. A query that
// does not prepare is not asked again: it runs unprepared as before.
func (w *writer) prepareWanted() {
	w.mu.Lock()
	if len(w.want) == 0 {
		w.mu.Unlock()
		return
	}
	want := w.want
	w.want = map[string]bool{}
	w.mu.Unlock()
	for q := range want {
		st, err := w.db.PrepareContext(context.Background(), q)
		w.mu.Lock()
		if err == nil {
			w.stmts[q] = st
		} else {
			w.stmts[q] = nil // in the map: not asked again
		}
		w.mu.Unlock()
	}
}

// exec runs query in tx, prepared when the writer has it.
func (w *writer) exec(ctx context.Context, tx *sql.Tx, query string) error {
	var err error
	if st := w.stmt(query); st != nil {
		_, err = tx.StmtContext(ctx, st).ExecContext(ctx)
	} else {
		_, err = tx.ExecContext(ctx, query)
	}
	return err
}

// run commits one batch and answers each of its writes.
func (w *writer) run(batch []*writeReq) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err <- err
			continue
		}
		live = append(live, r)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		live[0].err <- w.alone(live[0])
		return
	}
	results, err := w.together(live)
	if err != nil {
		// The batch failed as a whole (the disk, or a write that broke
		// the transaction): each write again on its own, so that one
		// failure stays that write's.
		for _, r := range live {
			r.err <- w.alone(r)
		}
		return
	}
	w.batches.Add(1)
	w.batched.Add(int64(len(live)))
	for i, r := range live {
		r.err <- results[i]
	}
}

// alone runs one write in its own transaction.
func (w *writer) alone(r *writeReq) error {
	ctx := context.WithoutCancel(r.ctx)
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := r.fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// together runs the writes in one transaction, each in a savepoint, and
// commits. It returns each write's own error, or an error for the batch
// when the transaction itself failed (nothing of it is then committed).
func (w *writer) together(live []*writeReq) ([]error, error) {
	bg := context.Background()
	tx, err := w.db.BeginTx(bg, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	results := make([]error, len(live))
	for i, r := range live {
		if err := w.exec(bg, tx, `SAVEPOINT w`); err != nil {
			return nil, err
		}
		if results[i] = r.fn(context.WithoutCancel(r.ctx), tx); results[i] != nil {
			if err := w.exec(bg, tx, `ROLLBACK TO w`); err != nil {
				return nil, err
			}
		}
		if err := w.exec(bg, tx, `RELEASE w`); err != nil {
			return nil, err
		}
	}
	return results, tx.Commit()
}
