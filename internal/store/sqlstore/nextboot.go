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
// has one and the state of their newest run, in one query: for each id,
// a search of the choices' primary key and one of the covering index
// runs_device_state (see BootStateQuery).
func (db *DB) BootState(ctx context.Context, deviceIDs ...string) (deploy.BootState, error) {
	bs := deploy.BootState{NextBoot: deploy.NextBootAuto}
	n := len(deviceIDs)
	if n == 0 {
		return bs, nil
	}
	args := make([]any, 0, 2*n)
	for range 2 {
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
// engines' query-plan tests); its arguments are the ids twice over. Each
// id is looked up on its own, by equality, and the answers combined:
// the first choice in the ids' order, the newest of the ids' newest runs.
// SQLite plans an IN list with ORDER BY through temporary b-trees, which
// cost a third of the read; equality searches need none.
func BootStateQuery(n int) string {
	var choice, runs strings.Builder
	for i := range n {
		if i > 0 {
			choice.WriteString(`, `)
			runs.WriteString(` UNION ALL `)
		}
		choice.WriteString(`(SELECT next_boot FROM device_next_boot WHERE device_id = ?)`)
		runs.WriteString(`SELECT * FROM (SELECT state, started_at, id FROM runs WHERE device_id = ?` +
			` ORDER BY started_at DESC, id LIMIT 1) AS r` + strconv.Itoa(i))
	}
	c := choice.String()
	if n > 1 {
		c = `COALESCE(` + c + `)`
	}
	return `SELECT ` + c + `, (SELECT state FROM (` + runs.String() + `) AS r ORDER BY started_at DESC, id LIMIT 1)`
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
