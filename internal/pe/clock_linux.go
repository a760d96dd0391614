package pe

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// SetClock sets the system clock (CLOCK_REALTIME). The agent calls it with
// the server's time before its first date-checked TLS request.
func SetClock(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("set clock: %w", err)
	}
	return nil
}
