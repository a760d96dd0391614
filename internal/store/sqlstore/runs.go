package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// UpsertDevice creates or updates d. An empty ID is generated; FirstSeen
// keeps the earliest value known and a zero LastSeen becomes now. On return
// d holds what was stored.
func (db *DB) UpsertDevice(ctx context.Context, d *deploy.Device) error {
	if d == nil {
		return deploy.Errorf(deploy.KindInvalid, "device is missing")
	}
	if d.ID == "" {
		d.ID = newID()
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		s := *d
		now := db.now()
		var doc string
		err := tx.QueryRowContext(ctx, `SELECT doc FROM devices WHERE id = ?`, d.ID).Scan(&doc)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			var old deploy.Device
			if err := decode(doc, &old); err != nil {
				return err
			}
			if !old.FirstSeen.IsZero() && (s.FirstSeen.IsZero() || old.FirstSeen.Before(s.FirstSeen)) {
				s.FirstSeen = old.FirstSeen
			}
		}
		if s.LastSeen.IsZero() {
			s.LastSeen = now
		}
		if s.FirstSeen.IsZero() {
			s.FirstSeen = s.LastSeen
		}
		s.FirstSeen, s.LastSeen = s.FirstSeen.UTC(), s.LastSeen.UTC()
		if doc, err = encode(&s); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, doc) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, s.ID, doc); err != nil {
			return err
		}
		*d = s
		return nil
	})
}

// Device returns the stored device.
func (db *DB) Device(ctx context.Context, id string) (*deploy.Device, error) {
	d := new(deploy.Device)
	err := db.read(ctx, func(tx *Tx) error {
		return getDoc(ctx, tx, d, func() error { return errNotFound("device", id) },
			`SELECT doc FROM devices WHERE id = ?`, id)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Devices returns every stored device, most recently seen first.
func (db *DB) Devices(ctx context.Context) ([]*deploy.Device, error) {
	var out []*deploy.Device
	err := db.read(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT doc FROM devices`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var doc string
			if err := rows.Scan(&doc); err != nil {
				return err
			}
			d := new(deploy.Device)
			if err := decode(doc, d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *deploy.Device) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func validRunState(s deploy.RunState) bool {
	switch s {
	case deploy.RunPending, deploy.RunRunning, deploy.RunSucceeded, deploy.RunFailed, deploy.RunLost, deploy.RunCanceled:
		return true
	}
	return false
}

// CreateRun stores a new run. An empty ID is generated, an empty State is
// pending, a zero StartedAt is now, and UpdatedAt is always set to now (the
// store owns it: MarkLostRuns compares against it).
func (db *DB) CreateRun(ctx context.Context, r *deploy.Run) error {
	if r == nil {
		return deploy.Errorf(deploy.KindInvalid, "run is missing")
	}
	if r.State == "" {
		r.State = deploy.RunPending
	}
	if !validRunState(r.State) {
		return deploy.Errorf(deploy.KindInvalid, "run state %q is not one of pending, running, succeeded, failed, lost, canceled", r.State)
	}
	if r.ID == "" {
		r.ID = newID()
	}
	now := db.now()
	if r.StartedAt.IsZero() {
		r.StartedAt = now
	}
	r.UpdatedAt = now
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		found, err := exists(ctx, tx, `SELECT 1 FROM runs WHERE id = ?`, r.ID)
		if err != nil {
			return err
		}
		if found {
			return deploy.Errorf(deploy.KindConflict, "run %s already exists", r.ID)
		}
		return putRun(ctx, tx, r)
	})
}

// UpdateRun replaces a stored run, setting UpdatedAt to now.
func (db *DB) UpdateRun(ctx context.Context, r *deploy.Run) error {
	if r == nil {
		return deploy.Errorf(deploy.KindInvalid, "run is missing")
	}
	if !validRunState(r.State) {
		return deploy.Errorf(deploy.KindInvalid, "run state %q is not one of pending, running, succeeded, failed, lost, canceled", r.State)
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		found, err := exists(ctx, tx, `SELECT 1 FROM runs WHERE id = ?`, r.ID)
		if err != nil {
			return err
		}
		if !found {
			return errNotFound("run", r.ID)
		}
		r.UpdatedAt = db.now()
		return putRun(ctx, tx, r)
	})
}

// Run returns the stored run: one statement, prepared once (every event
// post asks it).
func (db *DB) Run(ctx context.Context, id string) (*deploy.Run, error) {
	var doc string
	var updated int64
	err := db.hot.run.QueryRowContext(ctx, id).Scan(&doc, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound("run", id)
	}
	if err != nil {
		return nil, db.wrapDB(err)
	}
	r, err := decodeRun(doc, updated)
	return r, db.wrapDB(err)
}

// Runs returns the runs matching f, newest (by StartedAt) first.
func (db *DB) Runs(ctx context.Context, f deploy.RunFilter) ([]*deploy.Run, error) {
	if f.Limit < 0 {
		return nil, deploy.Errorf(deploy.KindInvalid, "run filter limit %d is negative", f.Limit)
	}
	var where []string
	var args []any
	if f.DeviceID != "" {
		where, args = append(where, "device_id = ?"), append(args, f.DeviceID)
	}
	if f.TaskSequenceID != "" {
		where, args = append(where, "task_sequence_id = ?"), append(args, f.TaskSequenceID)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	q := `SELECT doc, updated_at FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY started_at DESC, id"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	runs := []*deploy.Run{}
	err := db.read(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var doc string
			var updated int64
			if err := rows.Scan(&doc, &updated); err != nil {
				return err
			}
			r, err := decodeRun(doc, updated)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return runs, nil
}

// AppendRunEvent appends e to its run's events, assigning the next Seq (the
// first is 1) and a zero Time to now. The run counts as updated: its
// UpdatedAt becomes now.
func (db *DB) AppendRunEvent(ctx context.Context, e *deploy.RunEvent) error {
	if e == nil {
		return deploy.Errorf(deploy.KindInvalid, "run event is missing")
	}
	return db.writeLocked(ctx, []Lock{{Space: LockRun, Key: e.RunID}}, func(ctx context.Context, tx *Tx) error {
		now := db.now()
		res, err := tx.ExecContext(ctx, `UPDATE runs SET updated_at = ? WHERE id = ?`, micros(now), e.RunID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errNotFound("run", e.RunID)
		}
		return appendEvents(ctx, tx, e.RunID, []*deploy.RunEvent{e}, now)
	})
}

// AppendRunEvents appends the events to r's run as AppendRunEvent does and
// replaces the stored run with r, in one write.
func (db *DB) AppendRunEvents(ctx context.Context, r *deploy.Run, events []*deploy.RunEvent) error {
	if r == nil {
		return deploy.Errorf(deploy.KindInvalid, "run is missing")
	}
	if !validRunState(r.State) {
		return deploy.Errorf(deploy.KindInvalid, "run state %q is not one of pending, running, succeeded, failed, lost, canceled", r.State)
	}
	for i, e := range events {
		if e == nil {
			return deploy.Errorf(deploy.KindInvalid, "run event %d is missing", i)
		}
	}
	// The run's lock, not a SERIALIZABLE transaction, makes "the next
	// seq" one step: appends to different runs never conflict, where
	// SERIALIZABLE's predicate locks on run_events made concurrent
	// appends of different machines fail and retry (on PostgreSQL).
	return db.writeLocked(ctx, []Lock{{Space: LockRun, Key: r.ID}}, func(ctx context.Context, tx *Tx) error {
		s := *r
		now := db.now()
		s.UpdatedAt = now
		doc, err := runDoc(&s)
		if err != nil {
			return err
		}
		// Only the columns an event can change: the other indexes of
		// runs are left alone. r was read before this transaction, so
		// an administrator may have canceled the run since: the
		// condition keeps that cancel rather than writing the stale
		// run over it.
		res, err := tx.ExecContext(ctx, `UPDATE runs SET state = ?, updated_at = ?, doc = ? WHERE id = ? AND state <> ?`,
			string(s.State), micros(s.UpdatedAt), doc, s.ID, string(deploy.RunCanceled))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			found, err := exists(ctx, tx, `SELECT 1 FROM runs WHERE id = ?`, r.ID)
			if err != nil {
				return err
			}
			if !found {
				return errNotFound("run", r.ID)
			}
			return (&deploy.Run{ID: r.ID, State: deploy.RunCanceled}).AcceptsAgentReports()
		}
		if err := appendEvents(ctx, tx, r.ID, events, now); err != nil {
			return err
		}
		*r = s
		return nil
	})
}

// appendEvents inserts the events of one run after its last, numbering
// them on; each event is set to what was stored.
func appendEvents(ctx context.Context, tx *Tx, runID string, events []*deploy.RunEvent, now time.Time) error {
	var next int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM run_events WHERE run_id = ?`, runID).Scan(&next); err != nil {
		return err
	}
	stored := make([]deploy.RunEvent, len(events))
	for i, e := range events {
		s := *e
		s.RunID, s.Seq = runID, next+int64(i)
		if s.Time.IsZero() {
			s.Time = now
		}
		s.Time = s.Time.UTC()
		doc, err := encode(&s)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO run_events (run_id, seq, doc) VALUES (?, ?, ?)`, s.RunID, s.Seq, doc); err != nil {
			return err
		}
		stored[i] = s
	}
	for i, e := range events {
		*e = stored[i]
	}
	return nil
}

// RunEvents returns the run's events with Seq > afterSeq, in order.
func (db *DB) RunEvents(ctx context.Context, runID string, afterSeq int64) ([]*deploy.RunEvent, error) {
	events := []*deploy.RunEvent{}
	err := db.read(ctx, func(tx *Tx) error {
		found, err := exists(ctx, tx, `SELECT 1 FROM runs WHERE id = ?`, runID)
		if err != nil {
			return err
		}
		if !found {
			return errNotFound("run", runID)
		}
		events, err = queryDocs[deploy.RunEvent](ctx, tx, `SELECT doc FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq`, runID, afterSeq)
		return err
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// MarkLostRuns sets every non-terminal run whose UpdatedAt is before the
// given time to RunLost, with EndedAt and UpdatedAt now, and returns how
// many changed.
func (db *DB) MarkLostRuns(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := db.write(ctx, func(ctx context.Context, tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT doc, updated_at FROM runs
			WHERE state NOT IN (?, ?, ?, ?) AND updated_at < ?`,
			string(deploy.RunSucceeded), string(deploy.RunFailed), string(deploy.RunLost), string(deploy.RunCanceled), micros(before))
		if err != nil {
			return err
		}
		var lost []*deploy.Run
		for rows.Next() {
			var doc string
			var updated int64
			if err := rows.Scan(&doc, &updated); err != nil {
				rows.Close()
				return err
			}
			r, err := decodeRun(doc, updated)
			if err != nil {
				rows.Close()
				return err
			}
			lost = append(lost, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		now := db.now()
		for _, r := range lost {
			r.State = deploy.RunLost
			ended := now
			r.EndedAt = &ended
			r.UpdatedAt = now
			if err := putRun(ctx, tx, r); err != nil {
				return err
			}
		}
		n = len(lost)
		return nil
	})
	return n, err
}

// decodeRun decodes a run document; the updated_at column is authoritative
// because AppendRunEvent advances it without rewriting the document.
func decodeRun(doc string, updated int64) (*deploy.Run, error) {
	r := new(deploy.Run)
	if err := decode(doc, r); err != nil {
		return nil, err
	}
	r.UpdatedAt = fromMicros(updated)
	return r, nil
}

// runDoc sets r's times to UTC and encodes it for the doc column.
func runDoc(r *deploy.Run) (string, error) {
	r.StartedAt, r.UpdatedAt = r.StartedAt.UTC(), r.UpdatedAt.UTC()
	if r.EndedAt != nil {
		t := r.EndedAt.UTC()
		r.EndedAt = &t
	}
	for i := range r.Steps {
		r.Steps[i].StartedAt = r.Steps[i].StartedAt.UTC()
	}
	return encode(r)
}

// putRun upserts r with its times in UTC.
func putRun(ctx context.Context, tx *Tx, r *deploy.Run) error {
	doc, err := runDoc(r)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO runs (id, device_id, task_sequence_id, state, started_at, updated_at, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, task_sequence_id = excluded.task_sequence_id,
			state = excluded.state, started_at = excluded.started_at, updated_at = excluded.updated_at, doc = excluded.doc`,
		r.ID, r.DeviceID, r.TaskSequenceID, string(r.State), micros(r.StartedAt), micros(r.UpdatedAt), doc)
	return err
}
