package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

const usageRuns = `usage: imprint runs SUBCOMMAND [flags]

A run is one execution of a task sequence on one device, reported live by
its agent.

Subcommands:
  list [--device D] [--ts ID] [--state S]
                   list runs, newest first (state: pending, running,
                   succeeded, failed, lost or canceled)
  show ID          the run and one line per step: path, outcome, exit code,
                   duration, message; then where each download's bytes came
                   from (server, relay, peers, multicast)
  logs ID [--name BUNDLE -o FILE]
                   list the run's log bundles, or download one to FILE
  cancel ID        end a pending or running run as canceled: its session is
                   revoked and its agent may report nothing more
  events ID [--follow]
                   print the run's events; --follow prints each new one as
                   it arrives (on any replica) until the run ends
`

// followWait is how long one long poll of `runs events --follow` waits
// for the run to change.
const followWait = 25 * time.Second

func runRuns(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "runs", args, map[string]func(context.Context, *app, []string) error{
		"list":   runsList,
		"show":   runsShow,
		"logs":   runsLogs,
		"events": runsEvents,
		"cancel": runsCancel,
	}, usageRuns)
}

func runsList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint runs list", usageRuns)
	var f client.RunFilter
	fs.StringVar(&f.DeviceID, "device", "", "")
	fs.StringVar(&f.TaskSequenceID, "ts", "", "")
	state := fs.String("state", "", "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	switch st := deploy.RunState(*state); st {
	case "", deploy.RunPending, deploy.RunRunning, deploy.RunSucceeded, deploy.RunFailed, deploy.RunLost, deploy.RunCanceled:
		f.State = st
	default:
		return usagef(fmt.Sprintf("runs list: --state %q is not pending, running, succeeded, failed, lost or canceled", *state), "run 'imprint runs -h' for usage")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	runs, err := c.Runs(ctx, f)
	if err != nil {
		return fmt.Errorf("runs list: %w", err)
	}
	if a.jsonOut {
		if runs == nil {
			runs = []*deploy.Run{}
		}
		return a.printJSON(runs)
	}
	if len(runs) == 0 {
		fmt.Fprintln(a.stdout, "No runs.")
		return nil
	}
	rows := [][]string{{"ID", "DEVICE", "TASK SEQUENCE", "VERSION", "STATE", "CURRENT STEP", "STARTED", "UPDATED"}}
	for _, r := range runs {
		rows = append(rows, []string{r.ID, cell(r.DeviceID), cell(r.TaskSequenceID), strconv.Itoa(r.VersionNo),
			string(r.State), cell(r.CurrentStep), stamp(r.StartedAt), stamp(r.UpdatedAt)})
	}
	return table(a.stdout, rows)
}

func runsCancel(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint runs cancel", usageRuns)
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	r, err := c.CancelRun(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("runs cancel: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(r)
	}
	fmt.Fprintf(a.stdout, "Run %s on %s canceled.\n", safe(r.ID), safe(r.DeviceID))
	return nil
}

func runsShow(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint runs show", usageRuns)
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	r, err := c.Run(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("runs show: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(r)
	}
	ended := ""
	if r.EndedAt != nil {
		ended = stamp(*r.EndedAt)
	}
	if err := fields(a.stdout, [][2]string{
		{"ID", r.ID}, {"Device", r.DeviceID}, {"Task sequence", r.TaskSequenceID},
		{"Version", strconv.Itoa(r.VersionNo)}, {"State", string(r.State)},
		{"Current step", r.CurrentStep}, {"Started", stamp(r.StartedAt)},
		{"Updated", stamp(r.UpdatedAt)}, {"Ended", ended}, {"Error", oneLine(r.Error)},
	}); err != nil {
		return err
	}
	if len(r.Steps) == 0 {
		fmt.Fprintln(a.stdout, "\nNo steps reported yet.")
		return nil
	}
	fmt.Fprintln(a.stdout)
	rows := [][]string{{"STEP", "OUTCOME", "EXIT", "DURATION", "MESSAGE"}}
	for _, s := range r.Steps {
		rows = append(rows, []string{cell(s.Path), cell(string(s.Outcome)), exitCode(s.ExitCode), duration(s.Duration), cell(s.Message)})
	}
	if err := table(a.stdout, rows); err != nil {
		return err
	}
	return downloadsTable(a.stdout, r.Steps)
}

// downloadsTable prints where the bytes of each step's downloads came
// from, when any step reported downloads.
func downloadsTable(w io.Writer, steps []deploy.StepResult) error {
	rows := [][]string{{"STEP", "CONTENT", "BYTES", "SERVER", "RELAY", "PEERS", "MULTICAST", "REFUSED"}}
	for _, s := range steps {
		for _, d := range s.Downloads {
			name := d.Content
			if d.Name != "" {
				name = d.Name + " (" + d.Content + ")"
			}
			n := func(v int64) string { return strconv.FormatInt(v, 10) }
			rows = append(rows, []string{cell(s.Path), cell(name), n(d.Bytes), n(d.Server), n(d.Relay), n(d.Peers), n(d.Multicast), strconv.Itoa(d.Refused)})
		}
	}
	if len(rows) == 1 {
		return nil
	}
	fmt.Fprintln(w, "\nDownloads:")
	return table(w, rows)
}

func exitCode(c *int) string {
	if c == nil {
		return "-"
	}
	return strconv.Itoa(*c)
}

// duration formats seconds for a table: "-" when not measured.
func duration(sec float64) string {
	if sec <= 0 {
		return "-"
	}
	return (time.Duration(sec * float64(time.Second))).Round(100 * time.Millisecond).String()
}

func runsLogs(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint runs logs", usageRuns)
	name := fs.String("name", "", "")
	out := fs.String("o", "", "")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *name != "" && (*out == "" || *out == "-") {
		if err := a.notToTerminal("runs logs"); err != nil {
			return err
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if *name == "" {
		if *out != "" {
			return usagef("runs logs: -o needs --name (which bundle to download)", "run 'imprint runs logs ID' to list the bundles")
		}
		names, err := c.RunLogs(ctx, pos[0])
		if err != nil {
			return fmt.Errorf("runs logs: %w", err)
		}
		if a.jsonOut {
			return a.printJSON(names)
		}
		if len(names) == 0 {
			fmt.Fprintf(a.stdout, "Run %s has no log bundles.\n", safe(pos[0]))
			return nil
		}
		for _, n := range names {
			fmt.Fprintln(a.stdout, safe(n))
		}
		return nil
	}
	if *out == "" || *out == "-" {
		if _, err := c.DownloadRunLog(ctx, pos[0], *name, a.stdout); err != nil {
			return fmt.Errorf("runs logs: %w", err)
		}
		return nil
	}
	n, err := downloadTo(ctx, *out, func(w io.Writer) (int64, error) {
		return c.DownloadRunLog(ctx, pos[0], *name, w)
	})
	if err != nil {
		return fmt.Errorf("runs logs: %w", err)
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stdout, "wrote %s to %s\n", humanBytes(n), safe(*out))
	}
	return nil
}

func runsEvents(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint runs events", usageRuns)
	follow := fs.Bool("follow", false, "")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id := pos[0]
	c, err := a.client()
	if err != nil {
		return err
	}
	var after int64
	print := func() error {
		evs, err := c.RunEvents(ctx, id, after)
		if err != nil {
			return fmt.Errorf("runs events: %w", err)
		}
		for _, e := range evs {
			if err := a.printEvent(e); err != nil {
				return err
			}
			after = max(after, e.Seq)
		}
		return nil
	}
	if !*follow {
		if a.jsonOut {
			evs, err := c.RunEvents(ctx, id, 0)
			if err != nil {
				return fmt.Errorf("runs events: %w", err)
			}
			if evs == nil {
				evs = []*deploy.RunEvent{}
			}
			return a.printJSON(evs)
		}
		return print()
	}
	for {
		// Read the state first: events reported before it turned terminal
		// are then all fetched by the print that follows.
		r, err := c.Run(ctx, id)
		if err != nil {
			return fmt.Errorf("runs events: %w", err)
		}
		if r.State.Terminal() {
			if err := print(); err != nil {
				return err
			}
			if !a.jsonOut {
				fmt.Fprintf(a.stderr, "run %s %s\n", safe(r.ID), safe(string(r.State)))
			}
			return nil
		}
		// A long poll: the server answers as soon as the run changes,
		// on whichever replica the machine reports to.
		evs, err := c.WaitRunEvents(ctx, id, after, followWait)
		if err != nil {
			return fmt.Errorf("runs events: %w", err)
		}
		for _, e := range evs {
			if err := a.printEvent(e); err != nil {
				return err
			}
			after = max(after, e.Seq)
		}
	}
}

// printEvent prints one event as a line (or a JSON line with --json).
func (a *app) printEvent(e *deploy.RunEvent) error {
	if a.jsonOut {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("write JSON: %w", err)
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", safeJSON(b))
		return err
	}
	// The agent's report, as the server stored it.
	var d wire.Event
	_ = json.Unmarshal(e.Data, &d) // an unreadable payload still prints its header
	what := d.Path
	if what == "" {
		what = d.Name
	}
	if what == "" {
		what = e.StepID
	}
	parts := []string{strconv.FormatInt(e.Seq, 10), stamp(e.Time), e.Type}
	if what != "" {
		parts = append(parts, what)
	}
	switch e.Type {
	case wire.EventStepEnd:
		parts = append(parts, string(d.Outcome))
		if d.ExitCode != nil {
			parts = append(parts, "exit "+strconv.Itoa(*d.ExitCode))
		}
		if d.DurationSeconds > 0 {
			parts = append(parts, duration(d.DurationSeconds))
		}
	case wire.EventRunEnd:
		parts = append(parts, string(d.State))
	}
	if e.Message != "" {
		parts = append(parts, "— "+e.Message)
	}
	for i, p := range parts {
		parts[i] = safe(oneLine(p))
	}
	_, err := fmt.Fprintln(a.stdout, strings.Join(parts, "  "))
	return err
}
