//go:build unix

package netlimit

import "syscall"

// RaiseNoFile raises the soft limit of open files to the hard limit (the
// Go runtime does so too since 1.19; this keeps it explicit and reports
// the result) and returns the limit in force, 0 when unknown.
func RaiseNoFile() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
		}
	}
	return r.Cur
}
