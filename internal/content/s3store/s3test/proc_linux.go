package s3test

import "syscall"

// sysProcAttr kills weed with the test binary, should it die first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
