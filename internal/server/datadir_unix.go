//go:build unix

package server

import (
	"fmt"
	"io/fs"
	"syscall"
)

// checkOwner refuses an entry of the data directory that another user
// owns.
func checkOwner(path string, fi fs.FileInfo, uid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, but the server runs as uid %d: "+
			"run the server as the data directory's owner, or give it to this user (chown -R %d %s)",
			path, st.Uid, uid, uid, path)
	}
	return nil
}
