package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// set reports whether any metadata flag was given.
func (vf *versionFlags) set() bool {
	for _, o := range []optString{vf.status, vf.desc, vf.installCmd, vf.workdir, vf.successCodes, vf.manufacturer, vf.model, vf.sha256} {
		if o.set {
			return true
		}
	}
	return len(vf.depends) > 0 || len(vf.tags) > 0
}

// versionState is what a content version's bytes are like.
func versionState(v *deploy.ContentVersion) string {
	switch {
	case v.AwaitingContent:
		return "awaiting content"
	case v.ExternalURL != nil:
		return "url"
	}
	return "ready"
}

// importArgs parses an import command's arguments (FILE, --clone,
// --new-version) and calls do with the admin client, the opened file and
// the import mode; what names the command in errors ("ts import").
func (a *app) importArgs(ctx context.Context, fs *flags, args []string, what string,
	do func(c *client.Admin, f io.Reader, m client.ImportMode) error) error {
	clone := fs.Bool("clone", false, "")
	newVersion := fs.Bool("new-version", false, "")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	m := client.ImportNew
	switch {
	case *clone && *newVersion:
		return usagef("--clone and --new-version exclude each other", "")
	case *clone:
		m = client.ImportClone
	case *newVersion:
		m = client.ImportNewVersion
	}
	f, err := a.openArg(pos[0])
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := do(c, f, m); err != nil {
		return fmt.Errorf("%s: %s: %w", what, pos[0], err)
	}
	return nil
}

// export writes what get writes to stdout, or with -o FILE to FILE
// (replaced only once complete).
func (a *app) export(ctx context.Context, out string, get func(w io.Writer) error) error {
	if out == "-" {
		return get(a.stdout)
	}
	_, err := downloadTo(ctx, out, func(w io.Writer) (int64, error) {
		cw := &countWriter{w: w}
		err := get(cw)
		return cw.n, err
	})
	return err
}

func contentImport(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint content import", usageContent)
	var item *deploy.ContentItem
	if err := a.importArgs(ctx, fs, args, "content import", func(c *client.Admin, f io.Reader, m client.ImportMode) (err error) {
		item, err = c.ImportContentItem(ctx, f, m)
		return err
	}); err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(item)
	}
	fmt.Fprintf(a.stdout, "imported content item %s (%s) with %d %s\n", safe(item.ID), safe(item.Name), len(item.Versions), plural(len(item.Versions), "version", "versions"))
	for _, v := range item.Versions {
		if v.AwaitingContent {
			fmt.Fprintf(a.stdout, "  version %d is awaiting content: imprint content version %s PATH --version %d\n", v.VersionNo, safe(item.ID), v.VersionNo)
		}
	}
	return nil
}

func contentExport(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint content export", usageContent)
	out := fs.String("o", "-", "")
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := a.export(ctx, *out, func(w io.Writer) error { return c.ExportContentItem(ctx, pos[0], w) }); err != nil {
		return fmt.Errorf("content export: %w", err)
	}
	return nil
}

func stepdefExport(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint stepdef export", usageStepdef)
	out := fs.String("o", "-", "")
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := a.export(ctx, *out, func(w io.Writer) error { return c.ExportStepDefinition(ctx, pos[0], w) }); err != nil {
		return fmt.Errorf("stepdef export: %w", err)
	}
	return nil
}

// tsStatus sets the status of one version: an In_Development version
// becomes runnable (offered to machines) once Active.
func tsStatus(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint ts status", usageTS)
	pos, c, err := a.connect(fs, args, 3, 3)
	if err != nil {
		return err
	}
	no, err := strconv.Atoi(pos[1])
	if err != nil || no < 1 {
		return usagef(fmt.Sprintf("ts status: version %q is not a positive number", pos[1]), "usage: imprint ts status ID VERSION Active|In_Development|Deprecated")
	}
	st := deploy.Status(pos[2])
	if !st.Valid() {
		return usagef(fmt.Sprintf("ts status: %q is not Active, In_Development or Deprecated", pos[2]), "")
	}
	ts, err := c.TaskSequence(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("ts status: %w", err)
	}
	v, ok := ts.Version(no)
	if !ok {
		return fmt.Errorf("ts status: task sequence %s has no version %d", ts.ID, no)
	}
	v.Status = st
	saved, warnings, err := c.PutTaskSequence(ctx, ts)
	if err != nil {
		return fmt.Errorf("ts status: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(wire.SavedTaskSequence{TaskSequence: saved, Warnings: warnings})
	}
	fmt.Fprintf(a.stdout, "task sequence %s version %d is %s\n", safe(saved.ID), no, st)
	return nil
}
