package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/multicast"
)

const usageMulticast = `usage: imprint multicast SUBCOMMAND [flags]

A multicast session sends one content version to a roomful of machines at
once (udpcast): machines whose Apply operating system step has Multicast on
join it instead of downloading the image each. What a machine misses, and a
machine that comes after the transfer started, is fetched by unicast; the
SHA-256 is checked either way.

Subcommands:
  start --content ID[:VER] --machines N [--wait 5m] [--interface IF]
          start sending when N machines joined, or --wait after the first
          one joined; --interface defaults to the server's --pxe-interface
  list    list sessions, newest first
  stop ID cancel a session that has not ended
`

func runMulticast(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "multicast", args, map[string]func(context.Context, *app, []string) error{
		"start": multicastStart,
		"list":  multicastList,
		"stop":  multicastStop,
	}, usageMulticast)
}

func multicastStart(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint multicast start", usageMulticast)
	ref := fs.String("content", "", "")
	machines := fs.Int("machines", 0, "")
	wait := fs.Duration("wait", 5*time.Minute, "")
	iface := fs.String("interface", "", "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *ref == "" || *machines < 1 {
		return usagef("multicast start: --content ID[:VER] and --machines N are required", "run 'imprint multicast -h' for usage")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	id, no, err := a.contentRef(ctx, *ref)
	if err != nil {
		return fmt.Errorf("multicast start: %w", err)
	}
	s, err := c.StartMulticast(ctx, multicast.StartRequest{ContentID: id, VersionNo: no, Machines: *machines,
		Wait: multicast.Duration(*wait), Interface: *iface})
	if err != nil {
		return fmt.Errorf("multicast start: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(s)
	}
	fmt.Fprintf(a.stdout, "Multicast session %s: content %s:%d (%d bytes) on %s, port %d; waiting for %d machines (at most %s after the first).\n",
		safe(s.ID), safe(s.ContentID), s.VersionNo, s.Size, safe(s.Interface), s.Portbase, s.Machines, time.Duration(s.Wait))
	return nil
}

// contentRef resolves ID[:VER]; without a version, the newest version
// that has its bytes.
func (a *app) contentRef(ctx context.Context, ref string) (string, int, error) {
	id, ver, hasVer := strings.Cut(strings.TrimSpace(ref), ":")
	if hasVer {
		no, err := strconv.Atoi(ver)
		if err != nil || no < 1 {
			return "", 0, fmt.Errorf("content %q: the version after ':' must be a number from 1", ref)
		}
		return id, no, nil
	}
	c, err := a.client()
	if err != nil {
		return "", 0, err
	}
	item, err := c.ContentItem(ctx, id)
	if err != nil {
		return "", 0, err
	}
	no := 0
	for _, v := range item.Versions {
		if !v.AwaitingContent && v.VersionNo > no {
			no = v.VersionNo
		}
	}
	if no == 0 {
		return "", 0, fmt.Errorf("content %s has no version with its bytes", safe(id))
	}
	return item.ID, no, nil
}

func multicastList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint multicast list", usageMulticast)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	list, err := c.MulticastSessions(ctx)
	if err != nil {
		return fmt.Errorf("multicast list: %w", err)
	}
	if a.jsonOut {
		if list == nil {
			list = []multicast.Session{}
		}
		return a.printJSON(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "No multicast sessions.")
		return nil
	}
	rows := [][]string{{"ID", "CONTENT", "STATE", "JOINED", "DROPPED", "MACHINES", "PORT", "CREATED", "ERROR"}}
	for _, s := range list {
		rows = append(rows, []string{s.ID, cell(fmt.Sprintf("%s:%d", s.ContentID, s.VersionNo)), s.State,
			strconv.Itoa(s.Joined), strconv.Itoa(s.Dropped), strconv.Itoa(s.Machines), strconv.Itoa(s.Portbase),
			stamp(s.Created), cell(s.Error)})
	}
	return table(a.stdout, rows)
}

func multicastStop(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint multicast stop", usageMulticast)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.StopMulticast(ctx, pos[0]); err != nil {
		return fmt.Errorf("multicast stop: %w", err)
	}
	fmt.Fprintf(a.stdout, "Multicast session %s stopped.\n", safe(pos[0]))
	return nil
}
