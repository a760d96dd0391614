package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// LockFile is the state directory's lock: two agents never run one state
// (Windows' scheduled task starting the continuation while a technician
// runs `resume` by hand, say), which would run steps twice and interleave
// their journals. The holder's process ID is written in it for the
// refusal. The lock belongs to the open file, so it ends with the process
// however that ends.
const LockFile = "lock"

// errLocked is what tryLock returns when another holder has the lock.
var errLocked = errors.New("locked")

// lockState takes the lock of dir (which exists) or says who holds it.
func lockState(dir string) (release func(), err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			holder := "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					holder = "process " + strconv.Itoa(pid)
				}
			}
			return nil, deploy.Errorf(deploy.KindConflict,
				"another imprint-agent (%s) is running the state in %s: wait for it to end, or stop it first", holder, dir)
		}
		return nil, fmt.Errorf("state lock: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { unlock(f); f.Close() }, nil
}
