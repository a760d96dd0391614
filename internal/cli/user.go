package cli

import (
	"context"
	"fmt"

	"github.com/imprint-osd/imprint/internal/deploy"
)

const usageUser = `usage: imprint user SUBCOMMAND [flags]

Web-console accounts (https://HOST:7281/). There is no default account:
create the first admin with 'imprint user add NAME --role admin' on the
server. Accounts are managed only on the server itself, through its socket.

Roles: viewer reads everything but security secrets; operator also runs
and watches (next boot, cancel a run); admin does everything, security
settings, passcode and tokens included.

Subcommands:
  add NAME --role admin|operator|viewer
               create an account; the password is prompted twice (no echo);
               when stdin is not a terminal, read as two lines from stdin.
               At least 12 characters, not a common password
  list         list accounts and their roles
  passwd NAME  set a new password (prompted like add); ends its sessions
  remove NAME  delete an account and end its sessions (never the last admin
               while other accounts remain)
`

func runUser(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "user", args, map[string]func(context.Context, *app, []string) error{
		"add":    userAdd,
		"list":   userList,
		"passwd": userPasswd,
		"remove": userRemove,
	}, usageUser)
}

// userLocal refuses account management with --server.
func userLocal(a *app, what string) error {
	if a.remoteURL() != "" {
		return fmt.Errorf("user %s: console accounts are managed only on the server itself (through its socket), not with --server", what)
	}
	return nil
}

func userAdd(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint user add", usageUser)
	role := fs.String("role", "", "")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	switch *role {
	case "admin", "operator", "viewer":
	case "":
		return usagef("user add: --role is required (admin, operator or viewer)", "run 'imprint user -h' for usage")
	default:
		return usagef(fmt.Sprintf("user add: --role %q is not admin, operator or viewer", *role), "run 'imprint user -h' for usage")
	}
	if err := userLocal(a, "add"); err != nil {
		return err
	}
	pw, err := a.readNewSecret("password")
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	u, err := c.AddUser(ctx, pos[0], *role, pw)
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(u)
	}
	fmt.Fprintf(a.stdout, "user %s added (%s)\n", safe(u.Name), u.Role)
	return nil
}

func userList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint user list", usageUser)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := userLocal(a, "list"); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	list, err := c.Users(ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	if a.jsonOut {
		if list == nil {
			list = []deploy.User{}
		}
		return a.printJSON(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "No console accounts. Create the first admin: imprint user add NAME --role admin")
		return nil
	}
	rows := [][]string{{"NAME", "ROLE", "CREATED", "UPDATED"}}
	for _, u := range list {
		rows = append(rows, []string{cell(u.Name), string(u.Role), stamp(u.CreatedAt), stamp(u.UpdatedAt)})
	}
	return table(a.stdout, rows)
}

func userPasswd(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint user passwd", usageUser)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := userLocal(a, "passwd"); err != nil {
		return err
	}
	pw, err := a.readNewSecret("password")
	if err != nil {
		return fmt.Errorf("user passwd: %w", err)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	u, err := c.SetUserPassword(ctx, pos[0], pw)
	if err != nil {
		return fmt.Errorf("user passwd: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(u)
	}
	fmt.Fprintf(a.stdout, "password of %s changed; its console sessions ended\n", safe(u.Name))
	return nil
}

func userRemove(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint user remove", usageUser)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := userLocal(a, "remove"); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.RemoveUser(ctx, pos[0]); err != nil {
		return fmt.Errorf("user remove: %w", err)
	}
	fmt.Fprintf(a.stdout, "user %s removed\n", safe(pos[0]))
	return nil
}
