package pxe

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketOptions sets SO_REUSEADDR (to share port 67 with a DHCP server on
// this host), SO_BROADCAST and, when iface is set, SO_BINDTODEVICE.
func socketOptions(iface string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
				return
			}
			if iface != "" {
				serr = unix.BindToDevice(int(fd), iface)
			}
		})
		return errors.Join(err, serr)
	}
}
