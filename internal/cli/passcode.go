package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
)

const usagePasscode = `usage: imprint passcode SUBCOMMAND [flags]

The passcode is the shared code a technician types at the boot console. The
server stores only an Argon2id hash of it; no command ever prints it except
generate (and rotate --generate), once.

Subcommands:
  set          prompt for a new passcode twice (no echo); when stdin is not a
               terminal, read the two lines from stdin. At least 8 characters,
               not a common password or product word
  generate     make a random passcode and show it once
  rotate --grace DURATION [--generate]
               replace the passcode (prompted like set, or generated); the old
               one keeps working for DURATION (e.g. 24h); --grace 0 also
               revokes every session the old one opened
  status       whether a passcode is set, its generation and age
  clear [--yes]
               turn passcode authentication off (asks on a terminal; --yes is
               required when stdin is not a terminal)
`

func runPasscode(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "passcode", args, map[string]func(context.Context, *app, []string) error{
		"set":      passcodeSet,
		"generate": passcodeGenerate,
		"rotate":   passcodeRotate,
		"status":   passcodeStatus,
		"clear":    passcodeClear,
	}, usagePasscode)
}

func passcodeSet(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint passcode set", usagePasscode)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	code, err := a.readNewSecret("passcode")
	if err != nil {
		return fmt.Errorf("passcode set: %w", err)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ch, err := c.SetPasscode(ctx, code)
	if err != nil {
		return fmt.Errorf("passcode set: %w", err)
	}
	return a.printChange("passcode set", ch)
}

func passcodeGenerate(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint passcode generate", usagePasscode)
	_, c, err := a.connect(fs, args, 0, 0)
	if err != nil {
		return err
	}
	ch, err := c.GeneratePasscode(ctx)
	if err != nil {
		return fmt.Errorf("passcode generate: %w", err)
	}
	return a.printChange("passcode generated", ch)
}

func passcodeRotate(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint passcode rotate", usagePasscode)
	var grace optString
	fs.Var(&grace, "grace", "")
	generate := fs.Bool("generate", false, "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	hint := "run 'imprint passcode -h' for usage"
	if !grace.set {
		return usagef("passcode rotate: --grace is required (how long the old passcode keeps working, e.g. 24h, or 0)", hint)
	}
	d, err := time.ParseDuration(grace.value)
	if grace.value == "0" {
		d, err = 0, nil
	}
	if err != nil || d < 0 {
		return usagef(fmt.Sprintf("passcode rotate: --grace %q is not a duration such as 24h, 30m or 0", grace.value), hint)
	}
	var code string
	if !*generate {
		if code, err = a.readNewSecret("passcode"); err != nil {
			return fmt.Errorf("passcode rotate: %w", err)
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ch, err := c.RotatePasscode(ctx, code, d)
	if err != nil {
		return fmt.Errorf("passcode rotate: %w", err)
	}
	return a.printChange("passcode rotated", ch)
}

// printChange reports a passcode change; a generated code is printed once,
// on a line of its own.
func (a *app) printChange(what string, ch *client.PasscodeChange) error {
	if a.jsonOut {
		return a.printJSON(ch)
	}
	fmt.Fprintf(a.stdout, "%s (generation %d)\n", what, ch.Generation)
	if ch.Code != "" {
		fmt.Fprintf(a.stdout, "\nNew passcode: %s\nIt is shown only now: write it down or hand it to the technicians.\n\n", ch.Code)
	}
	if !ch.GraceUntil.IsZero() {
		fmt.Fprintf(a.stdout, "The previous passcode keeps working until %s.\n", stamp(ch.GraceUntil))
	}
	fmt.Fprintf(a.stdout, "Sessions revoked: %d\n", ch.SessionsRevoked)
	return nil
}

func passcodeStatus(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint passcode status", usagePasscode)
	_, c, err := a.connect(fs, args, 0, 0)
	if err != nil {
		return err
	}
	st, err := c.PasscodeStatus(ctx)
	if err != nil {
		return fmt.Errorf("passcode status: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(st)
	}
	if !st.Set {
		fmt.Fprintln(a.stdout, "Passcode: not set (passcode authentication is off; run 'imprint passcode set' or 'imprint passcode generate')")
	} else {
		how := "chosen by an admin"
		if st.Generated {
			how = "generated"
		}
		if err := fields(a.stdout, [][2]string{
			{"Passcode", "set (" + how + ")"},
			{"Generation", strconv.Itoa(st.Generation)},
			{"Set at", stamp(st.SetAt)},
			{"Age", age(st.Age)},
		}); err != nil {
			return err
		}
	}
	if st.PreviousGeneration > 0 && !st.PreviousGraceUntil.IsZero() {
		fmt.Fprintf(a.stdout, "Previous: generation %d, works until %s\n", st.PreviousGeneration, stamp(st.PreviousGraceUntil))
	}
	return nil
}

func passcodeClear(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint passcode clear", usagePasscode)
	yes := fs.Bool("yes", false, "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if !*yes {
		if !a.stdinTerminal() {
			return usagef("passcode clear: stdin is not a terminal: give --yes to turn passcode authentication off", "")
		}
		ok, err := a.confirm("Turn passcode authentication off? Clients that rely on it will be refused.")
		if err != nil {
			return fmt.Errorf("passcode clear: %w", err)
		}
		if !ok {
			return fmt.Errorf("passcode clear: not confirmed; nothing changed")
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ch, err := c.ClearPasscode(ctx)
	if err != nil {
		return fmt.Errorf("passcode clear: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(ch)
	}
	fmt.Fprintf(a.stdout, "passcode cleared: passcode authentication is off\nSessions revoked: %d\n", ch.SessionsRevoked)
	return nil
}

// stamp formats a time in UTC, or "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// age formats a duration in whole days, hours or minutes.
func age(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	}
	return "just now"
}
