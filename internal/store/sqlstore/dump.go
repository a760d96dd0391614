package sqlstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// DumpFormat is the version of the logical dump Dump writes and Load reads.
const DumpFormat = 1

// dumpHeader is the first line of a dump: its format, the schema version
// it was taken at and every table's columns, so that Load refuses a dump
// it would misread.
type dumpHeader struct {
	Format int         `json:"format"`
	Schema int         `json:"schema"`
	Tables []dumpTable `json:"tables"`
}

type dumpTable struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
}

// dumpRow is every further line: one row of table T, its values in the
// header's column order (integers as numbers, text as strings, blobs as
// base64, NULL as null).
type dumpRow struct {
	T string            `json:"t"`
	R []json.RawMessage `json:"r,omitempty"`
	// End marks the last line, with the number of rows before it: a
	// dump cut short at a line's end is not taken for a whole one.
	End  bool  `json:"end,omitempty"`
	Rows int64 `json:"rows,omitempty"`
}

// DumpInfo is what Dump read (deploy.DumpInfo).
type DumpInfo = deploy.DumpInfo

func header(schema int) dumpHeader {
	h := dumpHeader{Format: DumpFormat, Schema: schema}
	for _, tb := range Tables() {
		cols := make([]string, len(tb.cols))
		for i, c := range tb.cols {
			cols[i] = c.name + ":" + [...]string{"text", "int", "blob"}[c.kind]
		}
		h.Tables = append(h.Tables, dumpTable{Name: tb.Name, Columns: cols})
	}
	return h
}

// Dump writes every table of one snapshot (one read transaction: a
// REPEATABLE READ one on PostgreSQL, a WAL snapshot on SQLite) to w as
// JSON lines, which Load reads back into either engine. It runs beside
// a live server's writes.
func (db *DB) Dump(ctx context.Context, w io.Writer) (DumpInfo, error) {
	var info DumpInfo
	err := db.read(ctx, func(tx *Tx) error {
		info = DumpInfo{}
		var v *int64
		if err := tx.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
			return fmt.Errorf("dump: schema version: %w", err)
		}
		if v != nil {
			info.Schema = int(*v)
		}
		bw := bufio.NewWriterSize(w, 64<<10)
		enc := json.NewEncoder(bw)
		if err := enc.Encode(header(info.Schema)); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		blobs := map[string]bool{}
		var total int64
		for _, tb := range Tables() {
			var digests [][sha256.Size]byte
			var buf []byte
			row := dumpRow{T: tb.Name, R: make([]json.RawMessage, len(tb.cols))}
			err := eachRow(ctx, tx, tb, func(vals []any) error {
				var err error
				if buf, err = canonicalRow(buf[:0], tb.cols, vals); err != nil {
					return fmt.Errorf("dump %s: %w", tb.Name, err)
				}
				digests = append(digests, sha256.Sum256(buf))
				for i, c := range tb.cols {
					if row.R[i], err = encodeValue(c, vals[i]); err != nil {
						return fmt.Errorf("dump %s: %w", tb.Name, err)
					}
				}
				if tb.Name == "content_blobs" {
					if s, ok := vals[2].(string); ok {
						blobs[s] = true
					}
				}
				total++
				return enc.Encode(row)
			})
			if err != nil {
				return err
			}
			info.Tables = append(info.Tables, sumOf(tb.Name, digests))
		}
		if err := enc.Encode(dumpRow{End: true, Rows: total}); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		for h := range blobs {
			info.Blobs = append(info.Blobs, h)
		}
		slices.Sort(info.Blobs)
		return bw.Flush()
	})
	return info, err
}

// sumOf is Export's table sum of the rows' canonical digests.
func sumOf(table string, digests [][sha256.Size]byte) TableSum {
	slices.SortFunc(digests, func(a, b [sha256.Size]byte) int { return bytes.Compare(a[:], b[:]) })
	h := sha256.New()
	for _, d := range digests {
		h.Write(d[:])
	}
	return TableSum{Table: table, Rows: int64(len(digests)), SHA: hex.EncodeToString(h.Sum(nil))}
}

func encodeValue(c column, v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case []byte:
		if c.kind == colBlob {
			return json.Marshal(base64.StdEncoding.EncodeToString(x))
		}
		return json.Marshal(string(x))
	case string:
		if c.kind == colInt {
			if _, err := strconv.ParseInt(x, 10, 64); err != nil {
				return nil, fmt.Errorf("column %s: %q is not an integer", c.name, x)
			}
			return json.RawMessage(x), nil
		}
		if c.kind == colBlob {
			return json.Marshal(base64.StdEncoding.EncodeToString([]byte(x)))
		}
		return json.Marshal(x)
	}
	return nil, fmt.Errorf("column %s: unexpected value type %T", c.name, v)
}

func decodeValue(c column, raw json.RawMessage) (any, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	switch c.kind {
	case colInt:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("column %s: %.40s is not an integer", c.name, raw)
		}
		return n, nil
	case colBlob:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("column %s: not base64: %w", c.name, err)
		}
		return b, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("column %s: %w", c.name, err)
	}
	return s, nil
}

// LoadOptions tunes Load.
type LoadOptions struct {
	// Replace empties the target's tables first; without it Load refuses
	// a target holding any row (KindConflict).
	Replace bool
}

// Load reads a dump written by Dump into db in one write transaction:
// nothing is written unless the whole dump reads without error (a
// reader that fails at its end, as a hash check does, rolls it all
// back). The dump's schema version and columns must be this binary's.
// It returns the sums of what it loaded, computed like Export.
func (db *DB) Load(ctx context.Context, r io.Reader, opts LoadOptions) ([]TableSum, error) {
	schema, err := db.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	tables := Tables()
	byName := map[string]Table{}
	for _, tb := range tables {
		byName[tb.Name] = tb
	}
	var sums []TableSum
	ran := false
	err = db.write(ctx, func(ctx context.Context, tx *Tx) error {
		if ran {
			// PostgreSQL retries a transaction that met a concurrent
			// write; the dump was read once and cannot be read again.
			return deploy.Errorf(deploy.KindConflict, "the load met a concurrent write to the target database and was rolled back; stop what writes to it and run the restore again")
		}
		ran = true
		dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
		var h dumpHeader
		if err := dec.Decode(&h); err != nil {
			return deploy.Errorf(deploy.KindInvalid, "the dump does not start with its header: %v", err)
		}
		if h.Format != DumpFormat {
			return deploy.Errorf(deploy.KindInvalid, "the dump is of format %d; this imprint reads format %d", h.Format, DumpFormat)
		}
		if h.Schema != schema {
			return deploy.Errorf(deploy.KindConflict,
				"the dump is of schema version %d and this imprint's database is at %d: restore with the imprint release that took it, then upgrade", h.Schema, schema)
		}
		if want := header(schema); !slices.EqualFunc(h.Tables, want.Tables, func(a, b dumpTable) bool {
			return a.Name == b.Name && slices.Equal(a.Columns, b.Columns)
		}) {
			return deploy.Errorf(deploy.KindInvalid, "the dump's tables or columns differ from this imprint's schema %d", schema)
		}
		if !opts.Replace {
			for _, tb := range tables {
				found, err := exists(ctx, tx, `SELECT 1 FROM `+tb.Name+` LIMIT 1`)
				if err != nil {
					return fmt.Errorf("check target %s: %w", tb.Name, err)
				}
				if found {
					return deploy.Errorf(deploy.KindConflict,
						"the target database is not empty (table %s has rows); restore into a fresh one, or replace its contents", tb.Name)
				}
			}
		}
		for i := len(tables) - 1; i >= 0; i-- {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+tables[i].Name); err != nil {
				return fmt.Errorf("empty target %s: %w", tables[i].Name, err)
			}
		}
		digests := map[string][][sha256.Size]byte{}
		vals := []any{}
		var buf []byte
		var total int64
		for line := 2; ; line++ {
			var row dumpRow
			if err := dec.Decode(&row); errors.Is(err, io.EOF) {
				return deploy.Errorf(deploy.KindInvalid, "the dump ends after %d rows without its last line (truncated)", total)
			} else if de := (*deploy.Error)(nil); errors.As(err, &de) {
				return err // the reader's own verdict (a damaged archive)
			} else if err != nil {
				return deploy.Errorf(deploy.KindInvalid, "dump line %d: %v", line, err)
			}
			if row.End {
				if row.Rows != total {
					return deploy.Errorf(deploy.KindInvalid, "the dump holds %d rows, its last line says %d", total, row.Rows)
				}
				// Read to the end: a reader that checks a hash there
				// fails here, before the commit.
				if err := dec.Decode(&row); err == nil {
					return deploy.Errorf(deploy.KindInvalid, "the dump goes on after its last line")
				} else if !errors.Is(err, io.EOF) {
					return err
				}
				break
			}
			total++
			tb, ok := byName[row.T]
			if !ok || len(row.R) != len(tb.cols) {
				return deploy.Errorf(deploy.KindInvalid, "dump line %d: not a row of a known table", line)
			}
			vals = vals[:0]
			for i, c := range tb.cols {
				v, err := decodeValue(c, row.R[i])
				if err != nil {
					return deploy.Errorf(deploy.KindInvalid, "dump line %d: %s: %v", line, tb.Name, err)
				}
				vals = append(vals, v)
			}
			if buf, err = canonicalRow(buf[:0], tb.cols, vals); err != nil {
				return deploy.Errorf(deploy.KindInvalid, "dump line %d: %s: %v", line, tb.Name, err)
			}
			digests[tb.Name] = append(digests[tb.Name], sha256.Sum256(buf))
			ins := `INSERT INTO ` + tb.Name + ` (` + tb.names() + `) VALUES (?` + strings.Repeat(`, ?`, len(tb.cols)-1) + `)`
			if _, err := tx.ExecContext(ctx, ins, vals...); err != nil {
				return fmt.Errorf("dump line %d: write %s: %w", line, tb.Name, err)
			}
		}
		for _, tb := range tables {
			sums = append(sums, sumOf(tb.Name, digests[tb.Name]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sums, nil
}
