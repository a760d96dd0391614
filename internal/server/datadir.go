package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// prepareDataDir creates the data directory or takes an existing one in
// hand: it must belong to the user the server runs as, and nothing in it
// may grant the group or others any access (security.md PC-3: the
// database holds the passcode's Argon2 hash, tls/ the private keys). The
// directory and every directory below it are set to 0700, every file
// loses its group and other bits (0644 → 0600, a 0444 blob → 0400, a
// 0755 script → 0700), symbolic links are left alone. It returns how
// many modes it changed. An entry owned by another user is refused: that
// user could loosen it again, or swap it. uid is the server's effective
// user id (ignored where files have no Unix owner).
//
// The database file is created here, 0600, when missing: SQLite creates
// its -wal and -shm files with the mode of the database, whatever the
// umask. An empty dbPath (the store is not SQLite) creates nothing.
func prepareDataDir(dir, dbPath string, uid int) (fixed int, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("data directory: %w", err)
	}
	// The directory itself may be a link (/var/lib/imprint → /srv/imprint):
	// walk where it leads; links inside it are not followed.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return 0, fmt.Errorf("data directory: %w", err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // chmod would follow it out of the directory
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := checkOwner(p, fi, uid); err != nil {
			return err
		}
		want := fi.Mode().Perm() &^ 0o077
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() == want {
			return nil
		}
		if err := os.Chmod(p, want); err != nil {
			return err
		}
		fixed++
		return nil
	})
	if err != nil {
		return fixed, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if dbPath == "" {
		return fixed, nil
	}
	f, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fixed, fmt.Errorf("data directory: %w", err)
	}
	return fixed, f.Close()
}
