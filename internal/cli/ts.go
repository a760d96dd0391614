package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/wire"
)

const usageTS = `usage: imprint ts SUBCOMMAND [flags]

Subcommands:
  import FILE [--clone|--new-version]
                          import a DeployR task-sequence export (FILE or - for
                          stdin). An id that exists is refused unless
                          --new-version (the file becomes its next version;
                          earlier versions kept) or --clone (new ids). Prints
                          the id and every warning
  status ID VERSION STATUS
                          set a version Active, In_Development or Deprecated
                          (machines are offered Active versions only)
  export ID [-o FILE]     print the DeployR JSON of a task sequence
  list                    list task sequences
  show ID [--version N]   show a task sequence and its step tree (default: the
                          latest version)
  validate FILE|ID        validate an export file, or a stored task sequence;
                          lists every step that CANNOT RUN with the reason;
                          exit status 1 when there are errors
  rm ID                   delete a task sequence
  new --template SLUG --name NAME
                          create a task sequence from a template
  templates               list the templates
`

func runTS(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "ts", args, map[string]func(context.Context, *app, []string) error{
		"import":    tsImport,
		"export":    tsExport,
		"list":      tsList,
		"show":      tsShow,
		"validate":  tsValidate,
		"rm":        tsRm,
		"new":       tsNew,
		"templates": tsTemplates,
		"status":    tsStatus,
	}, usageTS)
}

func (a *app) printSaved(verb string, ts *deploy.TaskSequence, warnings []deploy.FieldError) error {
	if warnings == nil {
		warnings = []deploy.FieldError{}
	}
	if a.jsonOut {
		return a.printJSON(wire.SavedTaskSequence{TaskSequence: ts, Warnings: warnings})
	}
	fmt.Fprintf(a.stdout, "%s task sequence %s (%s)\n", verb, safe(ts.ID), safe(ts.Name))
	printFieldErrors(a.stdout, "Warnings", warnings)
	return nil
}

func tsImport(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint ts import", usageTS)
	var ts *deploy.TaskSequence
	var warnings []deploy.FieldError
	if err := a.importArgs(ctx, fs, args, "ts import", func(c *client.Admin, f io.Reader, m client.ImportMode) (err error) {
		ts, warnings, err = c.ImportTaskSequence(ctx, f, m)
		return err
	}); err != nil {
		return err
	}
	return a.printSaved("imported", ts, warnings)
}

func tsExport(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint ts export", usageTS)
	out := fs.String("o", "-", "")
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := a.export(ctx, *out, func(w io.Writer) error { return c.ExportTaskSequence(ctx, pos[0], w) }); err != nil {
		return fmt.Errorf("ts export: %w", err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func tsList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint ts list", usageTS)
	_, c, err := a.connect(fs, args, 0, 0)
	if err != nil {
		return err
	}
	seqs, err := c.TaskSequences(ctx)
	if err != nil {
		return fmt.Errorf("ts list: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(seqs)
	}
	rows := [][]string{{"ID", "NAME", "ARCH", "VERSION", "STATUS", "MODIFIED"}}
	for _, s := range seqs {
		v, st := "-", "-"
		if l := s.Latest(); l != nil {
			v, st = strconv.Itoa(l.VersionNo), string(l.Status)
		}
		rows = append(rows, []string{s.ID, cell(s.Name), cell(s.Architecture), v, st, cell(when(s.LastModifiedDate))})
	}
	return table(a.stdout, rows)
}

func tsShow(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint ts show", usageTS)
	no := fs.Int("version", 0, "")
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	ts, err := c.TaskSequence(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("ts show: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(ts)
	}
	if err := fields(a.stdout, [][2]string{
		{"ID", ts.ID}, {"Name", ts.Name}, {"Description", deploy.Str(ts.Description)},
		{"Architecture", ts.Architecture}, {"Tags", strings.Join(ts.Tags, ", ")},
		{"Versions", strconv.Itoa(len(ts.Versions))}, {"Modified", when(ts.LastModifiedDate)},
	}); err != nil {
		return err
	}
	v := ts.Latest()
	if *no > 0 {
		var ok bool
		if v, ok = ts.Version(*no); !ok {
			return fmt.Errorf("ts show: task sequence %s has no version %d", ts.ID, *no)
		}
	}
	if v == nil {
		fmt.Fprintln(a.stdout, "\nNo versions.")
		return nil
	}
	fmt.Fprintf(a.stdout, "\nVersion %d (%s):\n", v.VersionNo, safe(string(v.Status)))
	writeSteps(a.stdout, v.Steps, 1)
	return nil
}

// writeSteps prints a step tree, two spaces per level. Groups end in "/";
// markers follow in brackets: disabled, continue on error, and the
// condition.
func writeSteps(w io.Writer, steps []deploy.Step, depth int) {
	for at := range deploy.Steps(steps) {
		s := at.Step
		indent := strings.Repeat("  ", depth+at.Depth)
		name := s.Name
		if s.IsGroup {
			name += "/"
		}
		var marks []string
		if !s.Enabled {
			marks = append(marks, "[disabled]")
		}
		if s.ContinueOnError {
			marks = append(marks, "[continue on error]")
		}
		if c := conditionText(deploy.Str(s.Condition)); c != "" {
			marks = append(marks, "[if "+c+"]")
		}
		line := indent + name
		if len(marks) > 0 {
			line += "  " + strings.Join(marks, " ")
		}
		fmt.Fprintln(w, safe(line))
	}
}

// conditionText renders a step condition for people: a JSON query as
// `Field op "value" and …`, a PowerShell expression prefixed "powershell:".
func conditionText(raw string) string {
	c, err := sequence.ParseCondition(raw)
	switch {
	case err != nil:
		return "(invalid) " + oneLine(raw)
	case c == nil:
		return ""
	case c.Query == nil:
		return "powershell: " + oneLine(c.PowerShell)
	}
	return queryText(c.Query, false)
}

func queryText(q *sequence.Query, nested bool) string {
	parts := make([]string, 0, len(q.Items))
	for _, it := range q.Items {
		switch {
		case it.Group != nil:
			parts = append(parts, queryText(it.Group, len(it.Group.Items) > 1))
		case strings.EqualFold(it.Operator, "exists") || strings.EqualFold(it.Operator, "notExists"):
			parts = append(parts, it.Field+" "+it.Operator)
		default:
			parts = append(parts, fmt.Sprintf("%s %s %q", it.Field, it.Operator, it.Value))
		}
	}
	s := strings.Join(parts, " "+strings.ToLower(q.Operator)+" ")
	if nested {
		s = "(" + s + ")"
	}
	return s
}

// printCannotRun marks every step that cannot run, with the reason, and
// ends with the count.
func printCannotRun(w io.Writer, cannot []deploy.FieldError) {
	steps := map[string]bool{}
	if len(cannot) > 0 {
		fmt.Fprintln(w)
	}
	for _, f := range cannot {
		fmt.Fprintf(w, "CANNOT RUN  %s: %s\n", safe(f.Step), safe(f.Message))
		steps[f.Step] = true
	}
	if len(steps) == 0 {
		fmt.Fprintln(w, "Every enabled step can run.")
		return
	}
	fmt.Fprintf(w, "%d %s cannot run.\n", len(steps), plural(len(steps), "step", "steps"))
}

func tsValidate(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint ts validate", usageTS)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	arg := pos[0]
	c, err := a.client()
	if err != nil {
		return err
	}
	var doc io.Reader
	if info, statErr := os.Stat(arg); arg == "-" || (statErr == nil && !info.IsDir()) {
		f, err := a.openArg(arg)
		if err != nil {
			return fmt.Errorf("ts validate: %w", err)
		}
		defer f.Close()
		doc = f
	} else {
		// Not a file: a stored task sequence's id. Its export is small
		// (documents are capped at 16 MiB).
		var buf bytes.Buffer
		if err := c.ExportTaskSequence(ctx, arg, &buf); err != nil {
			// Unknown (404) or not an id at all (400, the server's id rule).
			if (deploy.IsNotFound(err) || deploy.ErrorKind(err) == deploy.KindInvalid) && os.IsNotExist(statErr) {
				return fmt.Errorf("ts validate: %s is neither a file nor a stored task sequence's id", arg)
			}
			return fmt.Errorf("ts validate: %w", err)
		}
		doc = &buf
	}
	res, err := c.ValidateTaskSequence(ctx, doc)
	if err != nil {
		return fmt.Errorf("ts validate: %s: %w", arg, err)
	}
	errs, warnings := res.Errors, res.Warnings
	if a.jsonOut {
		r := wire.Validation{Errors: errs, Warnings: warnings, CannotRun: res.CannotRun}
		for _, l := range []*[]deploy.FieldError{&r.Errors, &r.Warnings, &r.CannotRun} {
			if *l == nil {
				*l = []deploy.FieldError{}
			}
		}
		if err := a.printJSON(r); err != nil {
			return err
		}
	} else {
		printFieldErrors(a.stdout, "Errors", errs)
		printFieldErrors(a.stdout, "Warnings", warnings)
		printCannotRun(a.stdout, res.CannotRun)
	}
	if len(errs) > 0 {
		return fmt.Errorf("ts validate: %s: %d %s", arg, len(errs), plural(len(errs), "error", "errors"))
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stdout, "%s is valid (%d %s)\n", safe(arg), len(warnings), plural(len(warnings), "warning", "warnings"))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func tsRm(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint ts rm", usageTS)
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := c.DeleteTaskSequence(ctx, pos[0]); err != nil {
		return fmt.Errorf("ts rm: %w", err)
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stdout, "deleted task sequence %s\n", safe(pos[0]))
	}
	return nil
}

func tsNew(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint ts new", usageTS)
	tmpl := fs.String("template", "", "")
	name := fs.String("name", "", "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *tmpl == "" || strings.TrimSpace(*name) == "" {
		return usagef("ts new: --template and --name are required", "run 'imprint ts templates' for the templates")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ts, warnings, err := c.NewTaskSequence(ctx, *tmpl, *name)
	if err != nil {
		return fmt.Errorf("ts new: %w", err)
	}
	return a.printSaved("created", ts, warnings)
}

func tsTemplates(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint ts templates", usageTS)
	_, c, err := a.connect(fs, args, 0, 0)
	if err != nil {
		return err
	}
	ts, err := c.Templates(ctx)
	if err != nil {
		return fmt.Errorf("ts templates: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(ts)
	}
	rows := [][]string{{"TEMPLATE", "NAME", "DESCRIPTION"}}
	for _, t := range ts {
		rows = append(rows, []string{t.Slug, cell(t.Name), cell(t.Description)})
	}
	return table(a.stdout, rows)
}
