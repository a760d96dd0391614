//go:build !linux

package pxe

import (
	"errors"
	"syscall"
)

// socketOptions refuses: the PXE service needs SO_BINDTODEVICE and
// IP_PKTINFO as Linux has them.
func socketOptions(string) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return errors.New("the PXE service runs on Linux only")
	}
}
