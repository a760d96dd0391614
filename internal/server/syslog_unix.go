//go:build !windows && !plan9

package server

import "log/syslog"

// syslogConn is what the audit forwarder writes to (*syslog.Writer).
type syslogConn interface {
	Notice(m string) error
	Close() error
}

// dialSyslog connects to the audit log's syslog target as facility auth.
func dialSyslog(network, addr string) (syslogConn, error) {
	return syslog.Dial(network, addr, syslog.LOG_AUTH|syslog.LOG_NOTICE, "imprint")
}
