package disksteps

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
)

// Receiver timeouts: a machine waits for the transfer as long as the
// sender waits for machines, plus this margin; a transfer that goes quiet
// for receiveTimeout is left for unicast.
const (
	joinMargin     = 30 * time.Second
	receiveTimeout = 20 * time.Second
)

// openMulticast joins the multicast session waiting for ref, if there is
// one, and returns a stream that continues by unicast from the first
// missing byte when the session fails. ok false means download by unicast
// (no session, no multicast client, or the receiver could not start); why
// is written to log.
func (d *Deps) openMulticast(ctx context.Context, ref deploy.Ref, log io.Writer) (_ io.ReadCloser, _ *client.ContentInfo, ok bool, why string) {
	say := func(format string, args ...any) {
		why = fmt.Sprintf(format, args...)
		if log != nil {
			fmt.Fprintln(log, why)
		}
	}
	if d.Multicast == nil {
		say("Multicast is on, but this agent cannot join sessions; downloading by unicast")
		return nil, nil, false, why
	}
	info, err := d.Multicast.ContentInfo(ctx, ref.ID, ref.VersionNo)
	if err != nil {
		say("Multicast: %v; downloading by unicast", err)
		return nil, nil, false, why
	}
	if info.Item.ID == "" {
		info.Item.ID = ref.ID
	}
	if info.Version.VersionNo == 0 {
		info.Version.VersionNo = ref.VersionNo
	}
	sess, ok, err := d.Multicast.MulticastSession(ctx, ref.ID, ref.VersionNo)
	switch {
	case err != nil:
		say("Multicast: %v; downloading by unicast", err)
		return nil, nil, false, why
	case !ok:
		say("No multicast session is waiting for %s; downloading by unicast", ref)
		return nil, nil, false, why
	}
	receive := d.Receive
	if receive == nil {
		receive = func(ctx context.Context, sess multicast.Session) (io.ReadCloser, error) {
			iface, err := multicast.InterfaceTowards(d.Multicast.BaseURL())
			if err != nil {
				return nil, err
			}
			return multicast.Receive(ctx, multicast.ReceiveConfig{Interface: iface, Portbase: sess.Portbase,
				StartTimeout: time.Duration(sess.Wait) + joinMargin, ReceiveTimeout: receiveTimeout})
		}
	}
	rc, err := receive(ctx, sess)
	if err != nil {
		say("Multicast: %v; downloading by unicast", err)
		return nil, nil, false, why
	}
	say("Joined multicast session %s for %s (port %d, waiting for %d machines)", sess.ID, ref, sess.Portbase, sess.Machines)
	fallback := func(ctx context.Context, off int64) (io.ReadCloser, error) {
		say("Multicast stream lost after %d bytes; fetching the rest by unicast", off)
		return d.Multicast.OpenContentAt(ctx, info, off)
	}
	return multicast.NewReader(ctx, rc, fallback, info.Version.ContentSize), info, true, ""
}
