package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// docTable is a table of JSON documents keyed by id with a name column.
type docTable struct {
	table string // trusted constant, never user input
	what  string // for messages: "step definition"
}

func stepDefTable() docTable { return docTable{table: "step_definitions", what: "step definition"} }
func tsTable() docTable      { return docTable{table: "task_sequences", what: "task sequence"} }

func (t docTable) put(ctx context.Context, db *DB, id, name string, v any) error {
	doc, err := encode(v)
	if err != nil {
		return err
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO `+t.table+` (id, name, doc) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc`, id, name, doc)
		return err
	})
}

func (t docTable) get(ctx context.Context, db *DB, id string, v any) error {
	return db.read(ctx, func(tx *Tx) error {
		return getDoc(ctx, tx, v, func() error { return errNotFound(t.what, id) },
			`SELECT doc FROM `+t.table+` WHERE id = ?`, id)
	})
}

// list decodes every document, by name then id, with each calling add.
func (t docTable) list(ctx context.Context, db *DB, add func(doc string) error) error {
	return db.read(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT doc FROM `+t.table+` ORDER BY name, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var doc string
			if err := rows.Scan(&doc); err != nil {
				return err
			}
			if err := add(doc); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

func (t docTable) delete(ctx context.Context, db *DB, id string) error {
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+t.table+` WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errNotFound(t.what, id)
		}
		return nil
	})
}

// PutStepDefinition creates or replaces d, generating an ID when empty.
func (db *DB) PutStepDefinition(ctx context.Context, d *deploy.StepDefinition) error {
	if d == nil {
		return deploy.Errorf(deploy.KindInvalid, "step definition is missing")
	}
	if d.ID == "" {
		d.ID = newID()
	}
	return stepDefTable().put(ctx, db, d.ID, d.Name, d)
}

// StepDefinition returns the stored step definition.
func (db *DB) StepDefinition(ctx context.Context, id string) (*deploy.StepDefinition, error) {
	d := new(deploy.StepDefinition)
	if err := stepDefTable().get(ctx, db, id, d); err != nil {
		return nil, err
	}
	return d, nil
}

// StepDefinitions returns every stored step definition, by name then id.
func (db *DB) StepDefinitions(ctx context.Context) ([]*deploy.StepDefinition, error) {
	var out []*deploy.StepDefinition
	err := stepDefTable().list(ctx, db, func(doc string) error {
		d := new(deploy.StepDefinition)
		out = append(out, d)
		return decode(doc, d)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteStepDefinition removes a step definition.
func (db *DB) DeleteStepDefinition(ctx context.Context, id string) error {
	return stepDefTable().delete(ctx, db, id)
}

// PutTaskSequence creates or replaces t, generating an ID when empty.
func (db *DB) PutTaskSequence(ctx context.Context, t *deploy.TaskSequence) error {
	if t == nil {
		return deploy.Errorf(deploy.KindInvalid, "task sequence is missing")
	}
	if t.ID == "" {
		t.ID = newID()
	}
	return tsTable().put(ctx, db, t.ID, t.Name, t)
}

// TaskSequence returns the stored task sequence.
func (db *DB) TaskSequence(ctx context.Context, id string) (*deploy.TaskSequence, error) {
	t := new(deploy.TaskSequence)
	if err := tsTable().get(ctx, db, id, t); err != nil {
		return nil, err
	}
	return t, nil
}

// TaskSequences returns every task sequence, by name then id.
func (db *DB) TaskSequences(ctx context.Context) ([]*deploy.TaskSequence, error) {
	var out []*deploy.TaskSequence
	err := tsTable().list(ctx, db, func(doc string) error {
		t := new(deploy.TaskSequence)
		out = append(out, t)
		return decode(doc, t)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteTaskSequence removes a task sequence.
func (db *DB) DeleteTaskSequence(ctx context.Context, id string) error {
	return tsTable().delete(ctx, db, id)
}

// Setting returns the value stored under key.
func (db *DB) Setting(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := db.read(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return deploy.Errorf(deploy.KindNotFound, "setting %q not found", key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// PutSetting stores value under key, replacing any previous value.
func (db *DB) PutSetting(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return deploy.Errorf(deploy.KindInvalid, "setting key is empty")
	}
	if value == nil {
		value = []byte{}
	}
	return db.writeLocked(ctx, settingLock(key), func(ctx context.Context, tx *Tx) error {
		return putSetting(ctx, tx, key, value)
	})
}

func putSetting(ctx context.Context, tx *Tx, key string, value []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// settingLock is the lock every write of a setting takes.
func settingLock(key string) []Lock { return []Lock{{Space: LockSettings, Key: key}} }

// DeleteSetting removes key; deleting an unset key is not an error.
func (db *DB) DeleteSetting(ctx context.Context, key string) error {
	return db.writeLocked(ctx, settingLock(key), func(ctx context.Context, tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, key)
		return err
	})
}

// UpdateSetting changes key in one write transaction holding the key's
// lock, which every settings write takes (SQLite: the one writer;
// PostgreSQL: an advisory lock): fn gets the stored value (nil when unset)
// and returns the new one (nil deletes the key). No other process or
// goroutine changes the key in between. An error from fn changes nothing
// and is returned as it is.
func (db *DB) UpdateSetting(ctx context.Context, key string, fn func(old []byte) ([]byte, error)) error {
	if key == "" {
		return deploy.Errorf(deploy.KindInvalid, "setting key is empty")
	}
	return db.writeLocked(ctx, settingLock(key), func(ctx context.Context, tx *Tx) error {
		var old []byte
		err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			old = nil
		case err != nil:
			return err
		case old == nil:
			old = []byte{}
		}
		v, err := fn(old)
		if err != nil {
			return err
		}
		if v == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, key)
			return err
		}
		return putSetting(ctx, tx, key, v)
	})
}
