//go:build windows || plan9

package server

import "errors"

// syslogConn is what the audit forwarder writes to.
type syslogConn interface {
	Notice(m string) error
	Close() error
}

// dialSyslog fails: Go's log/syslog does not exist on this platform; the
// server runs on Linux (this file only lets the packages that import the
// server build for GOOS=windows, for vet and test compilation).
func dialSyslog(network, addr string) (syslogConn, error) {
	return nil, errors.New("audit forwarding to syslog is not available on this platform")
}
