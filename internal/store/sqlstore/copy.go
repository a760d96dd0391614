package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Column kinds of the canonical export: how a value is written whatever
// Go type the driver returned it as.
const (
	colText = iota
	colInt
	colBlob
)

// column is one column of a table, with its kind.
type column struct {
	name string
	kind int
}

// Table is one table of the store, as Copy and Export see it.
type Table struct {
	Name string
	cols []column
}

// Tables returns every table of the schema (not schema_migrations, which
// is each engine's own), parents before children: the order Copy inserts
// in and deletes in reverse.
func Tables() []Table {
	t := func(name string, cols ...string) Table {
		tb := Table{Name: name}
		for _, c := range cols {
			n, k, _ := strings.Cut(c, ":")
			kind := colText
			switch k {
			case "int":
				kind = colInt
			case "blob":
				kind = colBlob
			}
			tb.cols = append(tb.cols, column{name: n, kind: kind})
		}
		return tb
	}
	return []Table{
		t("settings", "key", "value:blob"),
		t("step_definitions", "id", "name", "doc"),
		t("task_sequences", "id", "name", "doc"),
		t("content_items", "id", "name", "doc"),
		t("content_versions", "item_id", "version_no:int", "id", "doc"),
		t("content_blobs", "item_id", "version_no:int", "sha256"),
		t("devices", "id", "doc"),
		t("device_next_boot", "device_id", "next_boot"),
		t("runs", "id", "device_id", "task_sequence_id", "state", "started_at:int", "updated_at:int", "doc"),
		t("run_events", "run_id", "seq:int", "doc"),
		t("sessions", "id", "token_hash:blob", "method", "device_id", "generation:int",
			"created_at:int", "expires_at:int", "revoked_at:int", "doc"),
		t("users", "name", "role", "password_hash", "created_at:int", "updated_at:int"),
		t("audit", "seq:int", "doc", "hash"),
		t("throttle_hits", "key", "id", "at:int"),
	}
}

func (tb Table) names() string {
	n := make([]string, len(tb.cols))
	for i, c := range tb.cols {
		n[i] = c.name
	}
	return strings.Join(n, ", ")
}

// TableSum is a table's row count and the SHA-256 of its canonical export
// (deploy.TableSum, so a server can hold one without importing the store).
type TableSum = deploy.TableSum

// canonicalRow appends the canonical form of one row: per column a kind
// letter, the length and the bytes (NULL as "n"), so that the same values
// give the same bytes on every engine and driver.
func canonicalRow(b []byte, cols []column, vals []any) ([]byte, error) {
	for i, c := range cols {
		v := vals[i]
		if v == nil {
			b = append(b, 'n')
			continue
		}
		var s string
		switch x := v.(type) {
		case int64:
			s = strconv.FormatInt(x, 10)
		case int32:
			s = strconv.FormatInt(int64(x), 10)
		case string:
			s = x
		case []byte:
			s = string(x)
		default:
			return nil, fmt.Errorf("column %s: unexpected value type %T", c.name, v)
		}
		if c.kind == colInt {
			if _, err := strconv.ParseInt(s, 10, 64); err != nil {
				return nil, fmt.Errorf("column %s: %q is not an integer", c.name, s)
			}
		}
		b = append(b, "sib"[c.kind])
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	return b, nil
}

// eachRow runs query over tb's columns in q and calls fn with each row's
// values, normalized for insertion (blob columns as []byte, text as
// string).
func eachRow(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, tb Table, fn func(vals []any) error) error {
	rows, err := q.QueryContext(ctx, `SELECT `+tb.names()+` FROM `+tb.Name)
	if err != nil {
		return fmt.Errorf("read %s: %w", tb.Name, err)
	}
	defer rows.Close()
	vals := make([]any, len(tb.cols))
	ptrs := make([]any, len(tb.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read %s: %w", tb.Name, err)
		}
		for i, c := range tb.cols {
			switch x := vals[i].(type) {
			case string:
				if c.kind == colBlob {
					vals[i] = []byte(x)
				}
			case []byte:
				if c.kind == colText {
					vals[i] = string(x)
				} else {
					vals[i] = bytes.Clone(x)
				}
			case int32:
				vals[i] = int64(x)
			}
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", tb.Name, err)
	}
	return nil
}

// Export returns each table's row count and the SHA-256 of its canonical
// export: the sorted SHA-256 digests of its rows' canonical forms, hashed
// in that order (independent of the engine's row order and collation).
// It reads one snapshot.
func (db *DB) Export(ctx context.Context) ([]TableSum, error) {
	var sums []TableSum
	err := db.read(ctx, func(tx *Tx) error {
		sums = sums[:0]
		for _, tb := range Tables() {
			var digests [][sha256.Size]byte
			var buf []byte
			err := eachRow(ctx, tx, tb, func(vals []any) error {
				var err error
				if buf, err = canonicalRow(buf[:0], tb.cols, vals); err != nil {
					return fmt.Errorf("export %s: %w", tb.Name, err)
				}
				digests = append(digests, sha256.Sum256(buf))
				return nil
			})
			if err != nil {
				return err
			}
			slices.SortFunc(digests, func(a, b [sha256.Size]byte) int { return bytes.Compare(a[:], b[:]) })
			h := sha256.New()
			for _, d := range digests {
				h.Write(d[:])
			}
			sums = append(sums, TableSum{Table: tb.Name, Rows: int64(len(digests)), SHA: hex.EncodeToString(h.Sum(nil))})
		}
		return nil
	})
	return sums, err
}

// CopyOptions tunes Copy.
type CopyOptions struct {
	// Replace empties the target's tables first; without it Copy refuses
	// a target holding any row (KindConflict), so that nothing is merged
	// or overwritten by mistake.
	Replace bool
}

// Copy copies every table of from into to, row for row (keys, sequence
// numbers, documents and the audit chain as stored), in one transaction
// on to, reading one snapshot of from. It then checks that both hold the
// same row counts and canonical export hashes, and returns the sums.
func Copy(ctx context.Context, from, to *DB, opts CopyOptions) ([]TableSum, error) {
	tables := Tables()
	err := from.read(ctx, func(src *Tx) error {
		return to.write(ctx, func(ctx context.Context, dst *Tx) error {
			if !opts.Replace {
				for _, tb := range tables {
					found, err := exists(ctx, dst, `SELECT 1 FROM `+tb.Name+` LIMIT 1`)
					if err != nil {
						return fmt.Errorf("check target %s: %w", tb.Name, err)
					}
					if found {
						return deploy.Errorf(deploy.KindConflict,
							"the target database is not empty (table %s has rows); copy into an empty database, or replace its contents", tb.Name)
					}
				}
			}
			for i := len(tables) - 1; i >= 0; i-- {
				if _, err := dst.ExecContext(ctx, `DELETE FROM `+tables[i].Name); err != nil {
					return fmt.Errorf("empty target %s: %w", tables[i].Name, err)
				}
			}
			for _, tb := range tables {
				ins := `INSERT INTO ` + tb.Name + ` (` + tb.names() + `) VALUES (?` + strings.Repeat(`, ?`, len(tb.cols)-1) + `)`
				err := eachRow(ctx, src, tb, func(vals []any) error {
					if _, err := dst.ExecContext(ctx, ins, vals...); err != nil {
						return fmt.Errorf("write %s: %w", tb.Name, err)
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	want, err := from.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("export source: %w", err)
	}
	got, err := to.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("export target: %w", err)
	}
	for i := range want {
		if got[i] != want[i] {
			return got, fmt.Errorf("verify copy: table %s: source %d rows sha256 %s, target %d rows sha256 %s",
				want[i].Table, want[i].Rows, want[i].SHA, got[i].Rows, got[i].SHA)
		}
	}
	return got, nil
}
