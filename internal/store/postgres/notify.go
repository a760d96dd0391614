package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Run changes reach the other replicas by NOTIFY on runsChannel, sent
// after the change commits, not inside its transaction: PostgreSQL
// serialises the commits of every transaction that notifies (one lock on
// the notification queue, held through the commit's WAL flush), which
// took the events of 1,000 machines from a p50 of 18 ms to 3.7 s
// (docs/performance.md). The notifier gathers the IDs of the runs this
// process changed and sends them every notifyEvery in as few notices as
// their size allows. A process that dies between a commit and the next
// send loses those notices: the views it would have woken see the change
// at their next poll (the console's every second, a long poll's timeout).

// runsChannel is the NOTIFY channel of run changes; a notice's payload is
// run IDs separated by commas, or anyRun.
const runsChannel = "imprint_runs"

// anyRun is the payload of a notice that some runs changed (MarkLostRuns).
const anyRun = "*"

// notifyEvery is how long run changes gather before they are announced.
const notifyEvery = 50 * time.Millisecond

// maxPayload keeps a notice under PostgreSQL's 8,000-byte limit.
const maxPayload = 7000

// notifier announces run changes in batches.
type notifier struct {
	db      *sql.DB
	mu      sync.Mutex
	pending map[string]struct{}
	kick    chan struct{} // capacity 1: something is pending
	stop    chan struct{}
	done    chan struct{}
}

func newNotifier(db *sql.DB) *notifier {
	n := &notifier{db: db, pending: map[string]struct{}{}, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go n.run()
	return n
}

// changed records that run id ("" for some runs) changed.
func (n *notifier) changed(id string) {
	if id == "" {
		id = anyRun
	}
	n.mu.Lock()
	n.pending[id] = struct{}{}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	defer close(n.done)
	for {
		select {
		case <-n.stop:
			n.flush()
			return
		case <-n.kick:
		}
		select {
		case <-n.stop:
		case <-time.After(notifyEvery):
		}
		n.flush()
	}
}

// flush sends what is pending; a notice that fails stays pending for the
// next flush.
func (n *notifier) flush() {
	n.mu.Lock()
	ids := make([]string, 0, len(n.pending))
	for id := range n.pending {
		ids = append(ids, id)
	}
	clear(n.pending)
	n.mu.Unlock()
	for len(ids) > 0 {
		var b strings.Builder
		i := 0
		for ; i < len(ids) && b.Len()+len(ids[i])+1 <= maxPayload; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(ids[i])
		}
		if i == 0 { // an ID too long for a notice: announce "some runs"
			b.WriteString(anyRun)
			i = 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := n.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, runsChannel, b.String())
		cancel()
		if err != nil {
			n.mu.Lock()
			for _, id := range ids {
				n.pending[id] = struct{}{}
			}
			n.mu.Unlock()
			return
		}
		ids = ids[i:]
	}
}

func (n *notifier) close() {
	close(n.stop)
	<-n.done
}

// The writes that change runs are announced once they committed.

// CreateRun is sqlstore's, announced.
func (db *DB) CreateRun(ctx context.Context, r *deploy.Run) error {
	return db.announce(db.DB.CreateRun(ctx, r), r)
}

// UpdateRun is sqlstore's, announced.
func (db *DB) UpdateRun(ctx context.Context, r *deploy.Run) error {
	return db.announce(db.DB.UpdateRun(ctx, r), r)
}

// AppendRunEvent is sqlstore's, announced.
func (db *DB) AppendRunEvent(ctx context.Context, e *deploy.RunEvent) error {
	err := db.DB.AppendRunEvent(ctx, e)
	if err == nil {
		db.n.changed(e.RunID)
	}
	return err
}

// AppendRunEvents is sqlstore's, announced.
func (db *DB) AppendRunEvents(ctx context.Context, r *deploy.Run, events []*deploy.RunEvent) error {
	return db.announce(db.DB.AppendRunEvents(ctx, r, events), r)
}

// MarkLostRuns is sqlstore's, announced as a change of some runs.
func (db *DB) MarkLostRuns(ctx context.Context, before time.Time) (int, error) {
	k, err := db.DB.MarkLostRuns(ctx, before)
	if err == nil && k > 0 {
		db.n.changed("")
	}
	return k, err
}

// announce records r's change when err is nil and returns err.
func (db *DB) announce(err error, r *deploy.Run) error {
	if err == nil && r != nil {
		db.n.changed(r.ID)
	}
	return err
}

// WatchRuns listens on runsChannel on a connection of its own (outside
// the pool, which it would otherwise hold) until ctx ends or the
// connection fails (deploy.RunWatcher).
func (db *DB) WatchRuns(ctx context.Context, changed func(runID string)) error {
	conn, err := pgx.ConnectConfig(ctx, db.cfg.Copy())
	if err != nil {
		return fmt.Errorf("watch runs: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+runsChannel); err != nil {
		return fmt.Errorf("watch runs: %w", err)
	}
	changed("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("watch runs: %w", err)
		}
		for id := range strings.SplitSeq(n.Payload, ",") {
			if id == anyRun {
				id = ""
			}
			changed(id)
		}
	}
}
