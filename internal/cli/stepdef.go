package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
)

const usageStepdef = `usage: imprint stepdef SUBCOMMAND [flags]

Subcommands:
  list              list step definitions, built-ins first
  show ID           show a step definition and the options of its latest version
  import FILE [--clone|--new-version]
                    import a DeployR step-definition export (FILE or - for stdin);
                    an id that exists is refused unless --new-version (append the
                    file's versions) or --clone (new ids)
  export ID [-o FILE]
                    print the DeployR JSON of a step definition
`

func runStepdef(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "stepdef", args, map[string]func(context.Context, *app, []string) error{
		"list":   stepdefList,
		"show":   stepdefShow,
		"import": stepdefImport,
		"export": stepdefExport,
	}, usageStepdef)
}

func stepdefList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint stepdef list", usageStepdef)
	_, c, err := a.connect(fs, args, 0, 0)
	if err != nil {
		return err
	}
	defs, err := c.StepDefinitions(ctx)
	if err != nil {
		return fmt.Errorf("stepdef list: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(defs)
	}
	rows := [][]string{{"ID", "NAME", "VERSION", "BUILT-IN"}}
	for _, d := range defs {
		v := "-"
		if l := d.Latest(); l != nil {
			v = strconv.Itoa(l.VersionNo)
		}
		rows = append(rows, []string{d.ID, cell(d.Name), v, yes(d.ReadOnly)})
	}
	return table(a.stdout, rows)
}

func stepdefShow(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint stepdef show", usageStepdef)
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	d, err := c.StepDefinition(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("stepdef show: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(d)
	}
	if err := fields(a.stdout, [][2]string{
		{"ID", d.ID}, {"Name", d.Name}, {"Description", deploy.Str(d.Description)},
		{"Type name", deploy.Str(d.TypeName)}, {"Versions", strconv.Itoa(len(d.Versions))},
		{"Built-in", yes(d.ReadOnly)}, {"Modified", when(d.LastModifiedDate)},
	}); err != nil {
		return err
	}
	l := d.Latest()
	if l == nil {
		return nil
	}
	fmt.Fprintf(a.stdout, "\nOptions of version %d (%s):\n", l.VersionNo, safe(string(l.Status)))
	rows := [][]string{{"NAME", "TYPE", "REQUIRED", "DEFAULT", "DISPLAY NAME"}}
	for _, o := range l.Options {
		rows = append(rows, []string{o.Name, o.Type, yes(o.Required), cell(deploy.Str(o.DefaultValue)), cell(o.DisplayName)})
	}
	return table(a.stdout, rows)
}

// openArg opens FILE, or stdin for "-".
func (a *app) openArg(name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(a.stdin), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func stepdefImport(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint stepdef import", usageStepdef)
	var d *deploy.StepDefinition
	if err := a.importArgs(ctx, fs, args, "stepdef import", func(c *client.Admin, f io.Reader, m client.ImportMode) (err error) {
		d, err = c.ImportStepDefinition(ctx, f, m)
		return err
	}); err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(d)
	}
	v := 0
	if l := d.Latest(); l != nil {
		v = l.VersionNo
	}
	fmt.Fprintf(a.stdout, "imported step definition %s (%s), version %d\n", safe(d.ID), safe(d.Name), v)
	return nil
}
