package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/imprint-osd/imprint/internal/wire"
)

const usageToken = `usage: imprint token SUBCOMMAND [flags]

Admin tokens let 'imprint --server URL' administer the server over HTTPS
(send the token in $IMPRINT_TOKEN or --token-file). They are created, listed
and revoked only on the server itself, through its socket.

Subcommands:
  create NAME [--expires DURATION]   mint a token (shown once), valid for
                                     --expires (default 2160h, 90 days;
                                     0: until revoked)
  list                               list tokens, live and ended
  revoke ID|NAME                     end a live token at once
`

func runToken(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "token", args, map[string]func(context.Context, *app, []string) error{
		"create": tokenCreate,
		"list":   tokenList,
		"revoke": tokenRevoke,
	}, usageToken)
}

// localOnly refuses token management with --server: the server serves
// those routes only on its socket.
func localOnly(a *app, what string) error {
	if a.remoteURL() != "" {
		return fmt.Errorf("token %s: admin tokens are managed only on the server itself (through its socket), not with --server", what)
	}
	return nil
}

func tokenCreate(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint token create", usageToken)
	expires := fs.Duration("expires", 90*24*time.Hour, "")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *expires < 0 {
		return usagef("token create: --expires must not be negative (0: until revoked)", "run 'imprint token -h' for usage")
	}
	if err := localOnly(a, "create"); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	t, err := c.CreateAdminToken(ctx, pos[0], *expires)
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(t)
	}
	fmt.Fprintf(a.stderr, "Admin token %q (id %s) created. It is shown this once; keep it secret:\n", t.Name, safe(t.ID))
	fmt.Fprintln(a.stdout, t.Token)
	return nil
}

func tokenList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint token list", usageToken)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := localOnly(a, "list"); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	list, err := c.AdminTokens(ctx)
	if err != nil {
		return fmt.Errorf("token list: %w", err)
	}
	if a.jsonOut {
		if list == nil {
			list = []wire.AdminToken{}
		}
		return a.printJSON(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "No admin tokens.")
		return nil
	}
	opt := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return stamp(*t)
	}
	rows := [][]string{{"ID", "NAME", "CREATED", "EXPIRES", "LAST USED", "REVOKED"}}
	for _, t := range list {
		rows = append(rows, []string{t.ID, cell(t.Name), cell(stamp(t.CreatedAt)), opt(t.ExpiresAt), opt(t.LastUsedAt), opt(t.RevokedAt)})
	}
	return table(a.stdout, rows)
}

func tokenRevoke(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint token revoke", usageToken)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := localOnly(a, "revoke"); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	t, err := c.RevokeAdminToken(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(t)
	}
	fmt.Fprintf(a.stdout, "revoked admin token %s (%s)\n", safe(t.ID), safe(t.Name))
	return nil
}
