package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// The operators' next-boot choices: one row per device in
// device_next_boot (none means auto), read with the newest run's state
// in one query on every network boot.

// BootState returns the next-boot choice of the first of deviceIDs that
// has one and the state of their newest run, in one query: two scalar
// subqueries, each a search of an index (the choices' primary key, the
// covering runs_device_state).
func (db *DB) BootState(ctx context.Context, deviceIDs ...string) (deploy.BootState, error) {
	bs := deploy.BootState{NextBoot: deploy.NextBootAuto}
	n := len(deviceIDs)
	if n == 0 {
		return bs, nil
	}
	uses := 3 // the choices' IN, their order, the runs' IN
	if n == 1 {
		uses = 2 // one id needs no order
	}
	args := make([]any, 0, uses*n)
	for range uses {
		for _, id := range deviceIDs {
			args = append(args, id)
		}
	}
	var row *sql.Row
	if n <= len(db.hot.bootState) {
		row = db.hot.bootState[n-1].QueryRowContext(ctx, args...)
	} else {
		row = db.pool.QueryRowContext(ctx, db.rebind(BootStateQuery(n)), args...)
	}
	var nb, state sql.NullString
	if err := row.Scan(&nb, &state); err != nil {
		return deploy.BootState{}, db.wrapDB(err)
	}
	if v := deploy.NextBoot(nb.String); nb.Valid && v.Valid() {
		bs.NextBoot = v
	}
	bs.LastRun = deploy.RunState(state.String)
	return bs, nil
}

// BootStateQuery is BootState's query for n device ids (exported for the
// engines' query-plan tests). Its arguments are the ids twice for one
// id, else three times over (see BootState).
func BootStateQuery(n int) string {
	in := `(?` + strings.Repeat(`, ?`, n-1) + `)`
	choice := `SELECT next_boot FROM device_next_boot WHERE device_id = ?`
	if n > 1 {
		var order strings.Builder
		for i := range n {
			order.WriteString(` WHEN ? THEN ` + strconv.Itoa(i))
		}
		choice = `SELECT next_boot FROM device_next_boot WHERE device_id IN ` + in +
			` ORDER BY CASE device_id` + order.String() + ` END LIMIT 1`
	}
	return `SELECT (` + choice + `), (SELECT state FROM runs WHERE device_id IN ` + in +
		` ORDER BY started_at DESC, id LIMIT 1)`
}

// SetNextBoot stores or (for auto) removes device id's choice, in one
// write that also checks the device exists.
func (db *DB) SetNextBoot(ctx context.Context, id string, nb deploy.NextBoot) error {
	if !nb.Valid() {
		return deploy.Errorf(deploy.KindInvalid, "nextBoot: %q is not auto, deploy or local", nb)
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		found, err := exists(ctx, tx, `SELECT 1 FROM devices WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if !found {
			return errNotFound("device", id)
		}
		if nb == deploy.NextBootAuto {
			_, err = tx.ExecContext(ctx, `DELETE FROM device_next_boot WHERE device_id = ?`, id)
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO device_next_boot (device_id, next_boot) VALUES (?, ?)
			ON CONFLICT (device_id) DO UPDATE SET next_boot = excluded.next_boot`, id, string(nb))
		return err
	})
}

// NextBoots returns every stored choice by device ID.
func (db *DB) NextBoots(ctx context.Context) (map[string]deploy.NextBoot, error) {
	out := map[string]deploy.NextBoot{}
	err := db.read(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT device_id, next_boot FROM device_next_boot`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, nb string
			if err := rows.Scan(&id, &nb); err != nil {
				return err
			}
			if v := deploy.NextBoot(nb); v.Valid() && v != deploy.NextBootAuto {
				out[id] = v
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
