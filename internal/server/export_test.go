package server

import "path/filepath"

// PrepareDataDir runs the start-up check of a data directory as if the
// server ran as uid.
func PrepareDataDir(dir string, uid int) (int, error) {
	return prepareDataDir(dir, filepath.Join(dir, "imprint.db"), uid)
}
