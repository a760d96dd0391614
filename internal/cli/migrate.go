package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/content/s3store"
	"github.com/imprint-osd/imprint/internal/store/postgres"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
)

const usageMigrate = `usage: imprint migrate --from sqlite:DIR [--to postgres://USER@HOST/DB] [--replace]
                      [--content-to STORE] [--content-from STORE]

Copies the whole state of a server to another database: settings, task
sequences, step definitions, content items and versions, devices, runs and
their events, sessions, web-console users, admin tokens and the audit log
with its hash chain as it is. The copy is one transaction on the target;
afterwards both databases are compared table by table (row counts and the
SHA-256 of each table's canonical export) and the target's audit chain is
verified. Stop the server first: a running one would change the source
while it is read.

  --from sqlite:DIR    the data directory of the server to copy (its
                       imprint.db), or postgres://… to copy from PostgreSQL
  --to URL             the target: postgres://… (or sqlite:DIR)
  --replace            empty a target that holds data first (without it a
                       target with any row is refused)
  --content-to STORE   also copy the content: every blob a content version
                       of --from references, to s3://BUCKET[/PREFIX]?endpoint=URL
                       (the new server's --content) or to a directory
  --content-from STORE where the blobs are now: DIR/content for --from
                       sqlite:DIR (the default), an s3:// URL or a directory

With --content-to the blobs are copied first, then the database (give
--content-to without --to to move only the content). Each blob streams
from the old store into the new one, which hashes it as it stores it and
keeps nothing whose SHA-256 differs from its name; afterwards every blob is
checked in the target (count and sizes). A blob already in the target is
not copied again, so a run cut short (a lost connection, Ctrl-C) leaves no
partial blob and the same command resumes it. S3 credentials come from
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else DIR/s3-credentials.

Run log files are not in the database or the content store and are not
moved; without --content-to the new server keeps using the old content
store (start it with the same --content, or DIR/content).
`

// storeEnd is one end of a migration: the store and its SQL layer.
type storeEnd struct {
	sql   *sqlstore.DB
	dir   string // the data directory of sqlite:DIR
	close func() error
}

func runMigrate(ctx context.Context, a *app, args []string) error {
	fl := a.flagSet("imprint migrate", usageMigrate)
	from := fl.String("from", "", "")
	to := fl.String("to", "", "")
	replace := fl.Bool("replace", false, "")
	contentTo := fl.String("content-to", "", "")
	contentFrom := fl.String("content-from", "", "")
	if _, err := a.parse(fl, args, 0, 0); err != nil {
		return err
	}
	if *from == "" || *to == "" && *contentTo == "" {
		return usagef("imprint migrate: --from is required, with --to, --content-to or both", usageMigrate)
	}
	if *from == *to {
		return usagef("imprint migrate: --from and --to name the same database", usageMigrate)
	}
	if *contentFrom != "" && *contentTo == "" {
		return usagef("imprint migrate: --content-from without --content-to", usageMigrate)
	}
	src, err := openEnd(ctx, *from, "from")
	if err != nil {
		return err
	}
	defer src.close()
	var dst *storeEnd
	if *to != "" {
		if dst, err = openEnd(ctx, *to, "to"); err != nil {
			return err
		}
		defer dst.close()
	}
	start := time.Now()
	out := map[string]any{"from": endName(*from)}
	var blobs *content.CopyReport
	if *contentTo != "" {
		// Content first: a copy stopped here has not touched the target
		// database, and the rerun skips what arrived.
		rep, err := a.migrateContent(ctx, src, *from, *contentFrom, *contentTo)
		if err != nil {
			return err
		}
		blobs = &rep
		out["content"] = map[string]any{"to": s3store.Redact(*contentTo), "blobs": rep}
	}
	if dst == nil {
		if a.jsonOut {
			return a.printJSON(out)
		}
		printBlobs(a, *blobs, *contentTo, time.Since(start))
		return nil
	}
	sums, err := sqlstore.Copy(ctx, src.sql, dst.sql, sqlstore.CopyOptions{Replace: *replace})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	events, err := dst.sql.AuditEvents(ctx, 0, 0)
	if err != nil {
		return fmt.Errorf("migrate: read the target's audit log: %w", err)
	}
	if err := auth.Verify(events); err != nil {
		return fmt.Errorf("migrate: the target's audit chain does not verify: %w", err)
	}
	if a.jsonOut {
		out["to"], out["tables"], out["auditEntries"] = endName(*to), sums, len(events)
		return a.printJSON(out)
	}
	rows := [][]string{{"TABLE", "ROWS", "SHA256"}}
	for _, s := range sums {
		rows = append(rows, []string{s.Table, strconv.FormatInt(s.Rows, 10), s.SHA})
	}
	if err := table(a.stdout, rows); err != nil {
		return err
	}
	if blobs != nil {
		printBlobs(a, *blobs, *contentTo, 0)
	}
	fmt.Fprintf(a.stdout, "Copied %s to %s in %s: every table matches, audit chain of %d entries verified.\n",
		safe(endName(*from)), safe(endName(*to)), time.Since(start).Round(time.Millisecond), len(events))
	return nil
}

// endName is how a migration end is shown: a PostgreSQL address without
// its password.
func endName(s string) string {
	if postgres.IsDSN(s) {
		return postgres.Redact(s)
	}
	return s
}

// openEnd opens sqlite:DIR or a postgres:// URL. The source DIR must not
// be in use by a running server (its admin socket answers).
func openEnd(ctx context.Context, s, which string) (*storeEnd, error) {
	if postgres.IsDSN(s) {
		db, err := postgres.Open(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("migrate --%s: %w", which, err)
		}
		return &storeEnd{sql: db.DB, close: db.Close}, nil
	}
	dir, ok := strings.CutPrefix(s, "sqlite:")
	if !ok || dir == "" {
		return nil, usagef(fmt.Sprintf("imprint migrate: --%s %q is neither sqlite:DIR nor a postgres:// URL", which, safe(s)), usageMigrate)
	}
	if c, err := net.DialTimeout("unix", filepath.Join(dir, "imprint.sock"), time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("migrate --%s: a server is running on %s (its admin socket answers); stop it first", which, safe(dir))
	}
	path := filepath.Join(dir, "imprint.db")
	if which == "from" {
		if _, err := statFile(path); err != nil {
			return nil, fmt.Errorf("migrate --from: %w", err)
		}
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("migrate --%s: %w", which, err)
	}
	return &storeEnd{sql: db.DB, dir: dir, close: db.Close}, nil
}

// statFile reports a missing source database clearly, instead of letting
// SQLite create an empty one to copy.
func statFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no database at %s (is DIR a server's data directory?)", safe(path))
		}
		return "", err
	}
	if st.IsDir() {
		return "", fmt.Errorf("%s is a directory, not a database", safe(path))
	}
	return path, nil
}
