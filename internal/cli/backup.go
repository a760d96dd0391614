package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/atomicfile"
	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/backup"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/store/postgres"
	"github.com/imprint-osd/imprint/internal/store/sqlite"
	"github.com/imprint-osd/imprint/internal/store/sqlstore"
)

const usageBackup = `usage: imprint backup FILE [--blobs]

Writes a backup of the running server (reached through DIR/imprint.sock)
to FILE: one consistent snapshot of its database, taken while it keeps
serving (SQLite or PostgreSQL alike), its TLS material (tls/: the CA key
machines trust) and, with --blobs, every content blob the snapshot
references. The archive is a zstd-compressed tar whose MANIFEST.json
lists each member's size and SHA-256; it is checked as it arrives and
FILE appears only once the whole archive verified.

FILE holds every secret of the server (passcode and admin-token hashes,
the CA's private key): it is written readable by its owner only (0600).

  --blobs   include the content blobs (without, restore needs the old
            DIR/content or the S3 bucket beside the backup)
`

const usageRestore = `usage: imprint restore FILE [--data DIR] [--db postgres://…] [--replace]

Restores a backup written by 'imprint backup' into the data directory DIR
of a stopped server, or a fresh one, and into its database: DIR/imprint.db,
or the PostgreSQL database --db names (a SQLite backup loads into
PostgreSQL and back). The whole archive is verified first (every member's
size and SHA-256): a damaged or truncated one is refused before anything
is written. The database loads in one transaction and is then compared
with the backup's table hashes, and its audit chain verified.

A running server (its socket answers) is refused: stop it first. A target
that holds data (rows in the database, or DIR/tls) is refused unless
--replace, which replaces its database rows and TLS files.

  --db URL     restore into this PostgreSQL database instead of DIR/imprint.db
  --replace    replace what the target holds
`

func runBackup(ctx context.Context, a *app, args []string) error {
	fl := a.flagSet("imprint backup", usageBackup)
	blobs := fl.Bool("blobs", false, "")
	pos, err := a.parse(fl, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if c.SocketPath() == "" {
		return fmt.Errorf("backup: only through the admin socket (--data DIR on the server's host): the archive holds the server's secrets")
	}
	out := pos[0]
	start := time.Now()
	var m *backup.Manifest
	var n int64
	err = atomicfile.WriteFunc(out, 0o600, func(w io.Writer) error {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			var err error
			m, err = backup.Read(pr, nil)
			pr.CloseWithError(errors.New("the archive failed its check"))
			done <- err
		}()
		var err error
		n, err = c.Backup(ctx, *blobs, io.MultiWriter(w, pw))
		pw.Close()
		verr := <-done
		if verr != nil {
			return verr
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("backup: %w (nothing written to %s)", err, safe(out))
	}
	rows := int64(0)
	for _, t := range m.Tables {
		rows += t.Rows
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"file": out, "bytes": n, "manifest": m})
	}
	included := "not included"
	if m.BlobsIncluded {
		included = "included"
	}
	fmt.Fprintf(a.stdout, "Wrote %s (%s, mode 0600) in %s: schema %d, %d rows in %d tables, %d content blobs referenced (%s). It holds the server's secrets: keep it safe.\n",
		safe(out), humanBytes(n), time.Since(start).Round(time.Millisecond), m.Schema, rows, len(m.Tables), len(m.Blobs), included)
	if len(m.MissingBlobs) > 0 {
		fmt.Fprintf(a.stdout, "warning: %d referenced content blobs were already missing from the content store and are not in the backup; run 'imprint content verify'\n", len(m.MissingBlobs))
	}
	return nil
}

func runRestore(ctx context.Context, a *app, args []string) error {
	fl := a.flagSet("imprint restore", usageRestore)
	dsn := fl.String("db", "", "")
	replace := fl.Bool("replace", false, "")
	pos, err := a.parse(fl, args, 1, 1)
	if err != nil {
		return err
	}
	if *dsn != "" && !postgres.IsDSN(*dsn) {
		return usagef(fmt.Sprintf("imprint restore: --db %q is not a postgres:// URL", safe(*dsn)), usageRestore)
	}
	dir := a.data()
	if c, err := net.DialTimeout("unix", server.SocketPath(dir), time.Second); err == nil {
		c.Close()
		return fmt.Errorf("restore: a server is running on %s (its admin socket answers); stop it first", safe(dir))
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	// First pass: the whole archive verifies before anything is written.
	m, err := backup.Read(f, nil)
	if err != nil {
		return fmt.Errorf("restore %s: %w (nothing was written)", safe(pos[0]), err)
	}
	if !*replace {
		if ents, err := os.ReadDir(filepath.Join(dir, "tls")); err == nil && len(ents) > 0 {
			return deploy.Errorf(deploy.KindConflict, "restore: %s already holds a server's TLS material (tls/); restore into a fresh directory, or add --replace to replace it", safe(dir))
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	db, closeDB, err := openRestoreTarget(ctx, dir, *dsn)
	if err != nil {
		return err
	}
	defer closeDB()
	if v, err := db.SchemaVersion(ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	} else if v != m.Schema {
		return deploy.Errorf(deploy.KindConflict, "restore: the backup is of schema version %d and this imprint's is %d: restore with the imprint release that took it (%s), then upgrade", m.Schema, v, safe(m.Server))
	}
	if !*replace {
		sums, err := db.Export(ctx)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		for _, s := range sums {
			if s.Rows > 0 {
				return deploy.Errorf(deploy.KindConflict, "restore: the target database is not empty (table %s has rows); restore into a fresh one, or add --replace to replace its contents", s.Table)
			}
		}
	}
	var blobs *content.Store
	if m.BlobsIncluded {
		if blobs, err = content.Open(filepath.Join(dir, "content")); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer blobs.Close()
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var loaded []sqlstore.TableSum
	nblobs := 0
	_, err = backup.Read(f, func(m *backup.Manifest, mem backup.Member, r io.Reader) error {
		switch {
		case mem.Name == backup.DBName:
			loaded, err = db.Load(ctx, r, sqlstore.LoadOptions{Replace: *replace})
			if err != nil {
				return fmt.Errorf("load the database: %w", err)
			}
		case strings.HasPrefix(mem.Name, backup.TLSDir):
			tdir := filepath.Join(dir, "tls")
			if err := os.MkdirAll(tdir, 0o700); err != nil {
				return err
			}
			return atomicfile.WriteFunc(filepath.Join(tdir, filepath.Base(mem.Name)), 0o600, func(w io.Writer) error {
				_, err := io.Copy(w, r)
				return err
			})
		case strings.HasPrefix(mem.Name, backup.BlobsDir):
			h := strings.TrimPrefix(mem.Name, backup.BlobsDir)
			if _, err := blobs.Put(ctx, r, content.PutOptions{ExpectSHA256: h}); err != nil {
				return fmt.Errorf("store content blob %s: %w", h, err)
			}
			nblobs++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore %s: %w", safe(pos[0]), err)
	}
	if len(loaded) != len(m.Tables) {
		return fmt.Errorf("restore: the backup holds no database")
	}
	for i, s := range loaded {
		if s != m.Tables[i] {
			return fmt.Errorf("restore: table %s: loaded %d rows sha256 %s, the backup says %d rows sha256 %s",
				s.Table, s.Rows, s.SHA, m.Tables[i].Rows, m.Tables[i].SHA)
		}
	}
	events, err := db.AuditEvents(ctx, 0, 0)
	if err != nil {
		return fmt.Errorf("restore: read the audit log: %w", err)
	}
	if err := auth.Verify(events); err != nil {
		return fmt.Errorf("restore: the restored audit chain does not verify: %w", err)
	}
	missing := 0
	if local, err := content.Open(filepath.Join(dir, "content")); err == nil {
		for _, h := range m.Blobs {
			if _, err := local.Stat(ctx, h); err != nil {
				missing++
			}
		}
		local.Close()
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"dir": dir, "tables": loaded, "blobsRestored": nblobs, "blobsMissing": missing, "auditEntries": len(events)})
	}
	rows := int64(0)
	for _, s := range loaded {
		rows += s.Rows
	}
	fmt.Fprintf(a.stdout, "Restored %s into %s: %d rows in %d tables match the backup, audit chain of %d entries verified, %d content blobs written.\n",
		safe(pos[0]), safe(dir), rows, len(loaded), len(events), nblobs)
	if missing > 0 {
		fmt.Fprintf(a.stdout, "warning: %d of the %d content blobs the backup references are not in %s: copy the old content directory there (or use the S3 bucket it used), or take the backup with --blobs\n",
			missing, len(m.Blobs), safe(filepath.Join(dir, "content")))
	}
	return nil
}

// openRestoreTarget opens DIR/imprint.db, or the PostgreSQL database dsn.
func openRestoreTarget(ctx context.Context, dir, dsn string) (*sqlstore.DB, func() error, error) {
	if dsn != "" {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("restore --db: %w", err)
		}
		return db.DB, db.Close, nil
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "imprint.db"))
	if err != nil {
		return nil, nil, fmt.Errorf("restore: %w", err)
	}
	return db.DB, db.Close, nil
}
