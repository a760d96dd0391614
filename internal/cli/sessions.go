package cli

import (
	"context"
	"fmt"

	"github.com/imprint-osd/imprint/internal/deploy"
)

const usageSessions = `usage: imprint sessions SUBCOMMAND [flags]

Every client authentication ends in a session bound to the device and the
task sequence it runs.

Subcommands:
  list [--all]             list live sessions (--all: revoked and expired ones too)
  revoke ID                end a live session at once
  revoke --device DEVICE   end every live session of a device (a lost laptop)
  revoke --all             end every live session (a leaked passcode)
`

func runSessions(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "sessions", args, map[string]func(context.Context, *app, []string) error{
		"list":   sessionsList,
		"revoke": sessionsRevoke,
	}, usageSessions)
}

func sessionsList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint sessions list", usageSessions)
	all := fs.Bool("all", false, "")
	_, c, err := a.connect(fs, args, 0, 0)
	if err != nil {
		return err
	}
	list, err := c.Sessions(ctx, *all)
	if err != nil {
		return fmt.Errorf("sessions list: %w", err)
	}
	if a.jsonOut {
		if list == nil {
			list = []*deploy.Session{}
		}
		return a.printJSON(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "No sessions.")
		return nil
	}
	rows := [][]string{{"ID", "METHOD", "DEVICE", "TASK SEQUENCE", "SOURCE", "SUBJECT", "CREATED", "LAST USED", "EXPIRES", "REVOKED"}}
	for _, s := range list {
		revoked := ""
		if s.RevokedAt != nil {
			revoked = stamp(*s.RevokedAt)
		}
		rows = append(rows, []string{s.ID, cell(s.Method), cell(s.DeviceID), cell(s.TaskSequenceID), cell(s.Source),
			cell(s.Subject), cell(stamp(s.CreatedAt)), cell(stamp(s.LastUsedAt)), cell(stamp(s.ExpiresAt)), cell(revoked)})
	}
	return table(a.stdout, rows)
}

func sessionsRevoke(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint sessions revoke", usageSessions)
	device := fs.String("device", "", "")
	all := fs.Bool("all", false, "")
	pos, err := a.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if (len(pos) == 1) == (*device != "" || *all) || (*device != "" && *all) {
		return usagef("sessions revoke: give one of ID, --device DEVICE or --all", "run 'imprint sessions -h' for usage")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		if err := c.RevokeSession(ctx, pos[0]); err != nil {
			return fmt.Errorf("sessions revoke: %w", err)
		}
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "revoked session %s\n", safe(pos[0]))
		}
		return nil
	}
	n, err := c.RevokeDeviceSessions(ctx, *device)
	if err != nil {
		return fmt.Errorf("sessions revoke: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(map[string]int{"sessionsRevoked": n})
	}
	fmt.Fprintf(a.stdout, "revoked %d session(s)\n", n)
	return nil
}
