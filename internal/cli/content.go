package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

const usageContent = `usage: imprint content SUBCOMMAND [flags]

Subcommands:
  add --name N --type File|Folder|URL --purpose P [--description D] [--tag T]...
        create a content item (purpose: Application, DriverPack, OperatingSystem,
        BootImage or Other)
  version ID PATH|URL [--status S] [--description D] [--install-cmd C] [--workdir W]
        [--success-codes 0,3010] [--depends GUID:VER]... [--manufacturer M]
        [--model M] [--tag T]... [--sha256 HEX]
        add a version: a File item uploads the file PATH, a Folder item the
        directory PATH (regular files and directories only), a URL item records
        the URL (and its expected --sha256)
  version ID PATH --version N
        supply the bytes of imported version N, which is awaiting content (the
        hash the export carried, if any, must match)
  import FILE [--clone|--new-version]
        import a DeployR content-item export (FILE or - for stdin): the item and
        every version's metadata; File and Folder versions await their content.
        An id that exists is refused unless --new-version (append the file's
        versions) or --clone (new ids)
  export ID [-o FILE]        print the DeployR JSON of a content item
  list                       list content items
  show ID [--version N]      show an item and its versions, or one version
  rm ID [--version N]        delete an item, or one version of it
  get ID [--version N] [-o FILE]
        download a version (default the latest; a Folder as a tar stream) to
        FILE, or stdout, and check it against its hash: on a mismatch FILE is
        not written and the exit status is 1
  verify                     have the server read every stored file and check
        it against its hash; lists corrupt and missing ones with the versions
        that use them, exit status 1 if there are any
`

func runContent(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "content", args, map[string]func(context.Context, *app, []string) error{
		"add":     contentAdd,
		"version": contentVersion,
		"list":    contentList,
		"show":    contentShow,
		"rm":      contentRm,
		"get":     contentGet,
		"import":  contentImport,
		"export":  contentExport,
		"verify":  contentVerify,
	}, usageContent)
}

func contentAdd(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint content add", usageContent)
	name := fs.String("name", "", "")
	typ := fs.String("type", "", "")
	purpose := fs.String("purpose", "", "")
	desc := fs.String("description", "", "")
	var tags listFlag
	fs.Var(&tags, "tag", "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	hint := "run 'imprint content -h' for usage"
	if strings.TrimSpace(*name) == "" {
		return usagef("content add: --name is required", hint)
	}
	if !deploy.ContentType(*typ).Valid() {
		return usagef(fmt.Sprintf("content add: --type %q is not File, Folder or URL", *typ), hint)
	}
	if !deploy.Purpose(*purpose).Valid() {
		return usagef(fmt.Sprintf("content add: --purpose %q is not Application, DriverPack, OperatingSystem, BootImage or Other", *purpose), hint)
	}
	item := deploy.ContentItem{
		Name:    *name,
		Type:    deploy.ContentType(*typ),
		Purpose: deploy.Purpose(*purpose),
		Tags:    []string(tags),
	}
	if *desc != "" {
		item.Description = deploy.StrPtr(*desc)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	out, err := c.CreateContentItem(ctx, item)
	if err != nil {
		return fmt.Errorf("content add: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(out)
	}
	fmt.Fprintf(a.stdout, "created content item %s (%s, %s %s)\n", safe(out.ID), safe(out.Name), safe(string(out.Type)), safe(string(out.Purpose)))
	return nil
}

// versionFlags are the metadata flags of `content version`.
type versionFlags struct {
	status, desc, installCmd, workdir, successCodes, manufacturer, model, sha256 optString
	depends, tags                                                                listFlag
}

// meta builds the version metadata from the flags, checking each.
func (vf *versionFlags) meta() (deploy.ContentVersion, error) {
	var m deploy.ContentVersion
	opt := func(o optString) *string {
		if !o.set {
			return nil
		}
		return deploy.StrPtr(o.value)
	}
	if vf.status.set {
		if !deploy.Status(vf.status.value).Valid() {
			return m, fmt.Errorf("--status %q is not In_Development, Active or Deprecated", vf.status.value)
		}
		m.Status = deploy.Status(vf.status.value)
	}
	m.Description = opt(vf.desc)
	m.InstallationCommandLine = opt(vf.installCmd)
	m.InstallationWorkingDirectory = opt(vf.workdir)
	m.InstallationSuccessCodes = opt(vf.successCodes)
	if _, err := m.SuccessCodes(); err != nil {
		return m, fmt.Errorf("--success-codes: %w", err)
	}
	for _, d := range vf.depends {
		ref, err := deploy.ParseRef(d)
		if err != nil {
			return m, fmt.Errorf("--depends: %w", err)
		}
		m.InstallationDependencies = append(m.InstallationDependencies, ref.String())
	}
	m.DriverManufacturer = opt(vf.manufacturer)
	m.DriverModel = opt(vf.model)
	m.Tags = []string(vf.tags)
	if vf.sha256.set {
		h := strings.ToLower(vf.sha256.value)
		if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
			return m, fmt.Errorf("--sha256 %q is not 64 hex digits", vf.sha256.value)
		}
		m.SHA256 = h
	}
	return m, nil
}

func contentVersion(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint content version", usageContent)
	var vf versionFlags
	for name, v := range map[string]*optString{
		"status": &vf.status, "description": &vf.desc, "install-cmd": &vf.installCmd,
		"workdir": &vf.workdir, "success-codes": &vf.successCodes, "manufacturer": &vf.manufacturer,
		"model": &vf.model, "sha256": &vf.sha256,
	} {
		fs.Var(v, name, "")
	}
	fs.Var(&vf.depends, "depends", "")
	fs.Var(&vf.tags, "tag", "")
	fill := fs.Int("version", 0, "")
	pos, err := a.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	id, src := pos[0], pos[1]
	meta, err := vf.meta()
	if err != nil {
		return usagef("content version: "+err.Error(), "run 'imprint content -h' for usage")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	item, err := c.ContentItem(ctx, id)
	if err != nil {
		return fmt.Errorf("content version: %w", err)
	}
	if *fill > 0 && (item.Type == deploy.ContentURL || vf.set()) {
		return usagef("content version: --version N supplies the bytes of an imported File or Folder version; it takes no other flags", "")
	}
	if meta.SHA256 != "" && item.Type != deploy.ContentURL {
		return usagef("content version: --sha256 is only for URL items (the server hashes uploads itself)", "")
	}

	var (
		body        io.ReadCloser
		contentType string
		prog        *progress
	)
	tty := a.isTerminal(a.stderr) && !a.jsonOut
	switch item.Type {
	case deploy.ContentURL:
		u, err := url.Parse(src)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef(fmt.Sprintf("content version: %q is not an http or https URL (item %s is of type URL)", src, item.ID), "")
		}
		meta.ExternalURL = deploy.StrPtr(src)
	case deploy.ContentFile:
		f, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("content version: %w", err)
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return fmt.Errorf("content version: %w", err)
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("content version: %s is not a regular file (item %s is of type File)", src, item.ID)
		}
		if meta.RelativePath == nil && *fill == 0 {
			meta.RelativePath = deploy.StrPtr(filepath.Base(src))
		}
		prog = newProgress(a.stderr, "uploaded", info.Size(), tty, a.now)
		body = prog.reader(f, info.Size(), true)
		contentType = "application/octet-stream"
	case deploy.ContentFolder:
		st, err := scanFolder(src)
		if err != nil {
			return fmt.Errorf("content version: %w", err)
		}
		pr := tarPipe(ctx, src)
		defer pr.Close() // stops the tar writer if the server answered early
		prog = newProgress(a.stderr, fmt.Sprintf("uploaded %d files,", st.Files), st.TarSize, tty, a.now)
		body = prog.reader(pr, 0, false)
		contentType = "application/x-tar"
	default:
		return fmt.Errorf("content version: item %s has unknown type %q", item.ID, item.Type)
	}

	var r io.Reader
	if body != nil {
		r = body
	}
	var v *deploy.ContentVersion
	if *fill > 0 {
		v, err = c.FillContentVersion(ctx, item.ID, *fill, r, contentType)
	} else {
		v, err = c.AddContentVersion(ctx, item.ID, meta, r, contentType)
	}
	if prog != nil {
		prog.finish(err == nil)
	}
	if err != nil {
		return fmt.Errorf("content version: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(v)
	}
	verb := "added"
	if *fill > 0 {
		verb = "supplied the content of"
	}
	fmt.Fprintf(a.stdout, "%s version %d of %s (%s", verb, v.VersionNo, safe(item.ID), humanBytes(v.ContentSize))
	if v.SHA256 != "" {
		fmt.Fprintf(a.stdout, ", sha256 %s", safe(v.SHA256))
	}
	fmt.Fprintln(a.stdout, ")")
	return nil
}

func contentList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint content list", usageContent)
	_, c, err := a.connect(fs, args, 0, 0)
	if err != nil {
		return err
	}
	items, err := c.ContentItems(ctx)
	if err != nil {
		return fmt.Errorf("content list: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(items)
	}
	rows := [][]string{{"ID", "NAME", "TYPE", "PURPOSE", "VERSIONS", "MODIFIED"}}
	for _, it := range items {
		n := it.VersionsCount
		if len(it.Versions) > n {
			n = len(it.Versions)
		}
		rows = append(rows, []string{it.ID, cell(it.Name), string(it.Type), string(it.Purpose), strconv.Itoa(n), cell(when(it.LastModifiedDate))})
	}
	return table(a.stdout, rows)
}

func contentShow(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint content show", usageContent)
	no := fs.Int("version", 0, "")
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *no > 0 {
		v, err := c.ContentVersion(ctx, pos[0], *no)
		if err != nil {
			return fmt.Errorf("content show: %w", err)
		}
		if a.jsonOut {
			return a.printJSON(v)
		}
		return printVersion(a.stdout, v)
	}
	item, err := c.ContentItem(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("content show: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(item)
	}
	if err := fields(a.stdout, [][2]string{
		{"ID", item.ID}, {"Name", item.Name}, {"Type", string(item.Type)},
		{"Purpose", string(item.Purpose)}, {"Description", deploy.Str(item.Description)},
		{"Tags", strings.Join(item.Tags, ", ")}, {"Created", when(item.CreatedDate)},
		{"Modified", when(item.LastModifiedDate)}, {"Read-only", yes(item.ReadOnly)},
	}); err != nil {
		return err
	}
	if len(item.Versions) == 0 {
		fmt.Fprintln(a.stdout, "\nNo versions.")
		return nil
	}
	fmt.Fprintln(a.stdout)
	rows := [][]string{{"VERSION", "STATUS", "SIZE", "SHA256", "DESCRIPTION"}}
	for _, v := range item.Versions {
		sum := v.SHA256
		if len(sum) > 12 {
			sum = sum[:12]
		}
		size := humanBytes(v.ContentSize)
		switch {
		case v.AwaitingContent:
			size = "awaiting content"
		case v.ExternalURL != nil:
			size = "url"
		}
		rows = append(rows, []string{strconv.Itoa(v.VersionNo), string(v.Status), size, cell(sum), cell(deploy.Str(v.Description))})
	}
	return table(a.stdout, rows)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

// printVersion prints one content version as fields.
func printVersion(w io.Writer, v *deploy.ContentVersion) error {
	kv := [][2]string{
		{"Item", v.ContentItemID}, {"Version", strconv.Itoa(v.VersionNo)}, {"ID", v.ID},
		{"Status", string(v.Status)}, {"Description", deploy.Str(v.Description)},
		{"Size", humanBytes(v.ContentSize)}, {"SHA256", v.SHA256}, {"State", versionState(v)},
		{"Path", deploy.Str(v.RelativePath)}, {"URL", deploy.Str(v.ExternalURL)},
		{"Install command", deploy.Str(v.InstallationCommandLine)},
		{"Working directory", deploy.Str(v.InstallationWorkingDirectory)},
		{"Success codes", deploy.Str(v.InstallationSuccessCodes)},
		{"Depends on", strings.Join(v.InstallationDependencies, ", ")},
		{"Manufacturer", deploy.Str(v.DriverManufacturer)}, {"Model", deploy.Str(v.DriverModel)},
		{"Tags", strings.Join(v.Tags, ", ")}, {"Created", when(v.CreatedDate)},
	}
	if v.Manifest != nil {
		kv = append(kv, [2]string{"Files", strconv.Itoa(len(v.Manifest.Files))})
	}
	return fields(w, kv)
}

func contentRm(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint content rm", usageContent)
	no := fs.Int("version", 0, "")
	pos, c, err := a.connect(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *no > 0 {
		if err := c.DeleteContentVersion(ctx, pos[0], *no); err != nil {
			return fmt.Errorf("content rm: %w", err)
		}
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "deleted version %d of %s\n", *no, safe(pos[0]))
		}
		return nil
	}
	if err := c.DeleteContentItem(ctx, pos[0]); err != nil {
		return fmt.Errorf("content rm: %w", err)
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stdout, "deleted content item %s\n", safe(pos[0]))
	}
	return nil
}

func contentGet(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint content get", usageContent)
	no := fs.Int("version", 0, "")
	out := fs.String("o", "-", "")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *out == "-" {
		if err := a.notToTerminal("content get"); err != nil {
			return err
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	item, err := c.ContentItem(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("content get: %w", err)
	}
	if *no <= 0 {
		for _, v := range item.Versions {
			*no = max(*no, v.VersionNo)
		}
		if *no == 0 {
			return fmt.Errorf("content get: content item %s has no versions", safe(pos[0]))
		}
	}
	v, err := c.ContentVersion(ctx, pos[0], *no)
	if err != nil {
		return fmt.Errorf("content get: %w", err)
	}
	get := func(w io.Writer) (int64, error) {
		cw, check := checkedWriter(w, item.Type, v)
		n, err := c.DownloadContentVersion(ctx, pos[0], *no, cw)
		if cerr := check(err); err == nil {
			err = cerr
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: the server broke off the transfer, as it does when a stored file fails its hash check "+
				"(see 'imprint audit' and 'imprint content verify')", err)
		}
		return n, err
	}
	if *out == "-" {
		if _, err := get(a.stdout); err != nil {
			return fmt.Errorf("content get: %w (the bytes already written to stdout are not to be trusted)", err)
		}
		return nil
	}
	n, err := downloadTo(ctx, *out, get)
	if err != nil {
		return fmt.Errorf("content get: %w; %s was not written", err, safe(*out))
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stdout, "wrote %s to %s (sha256 checked)\n", humanBytes(n), safe(*out))
	}
	return nil
}

func contentVerify(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint content verify", usageContent)
	_, c, err := a.connect(fs, args, 0, 0)
	if err != nil {
		return err
	}
	rep, err := c.VerifyContent(ctx)
	if err != nil {
		return fmt.Errorf("content verify: %w", err)
	}
	if a.jsonOut {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "checked %d stored %s (%s)\n", rep.Blobs, plural(rep.Blobs, "file", "files"), humanBytes(rep.Bytes))
		if len(rep.Problems) > 0 {
			fmt.Fprintln(a.stdout)
			rows := [][]string{{"PROBLEM", "SHA256", "USED BY", "DETAIL"}}
			for _, p := range rep.Problems {
				var users []string
				for _, u := range p.UsedBy {
					s := fmt.Sprintf("%s (%s) version %d", u.ItemName, u.ItemID, u.VersionNo)
					if u.Path != "" {
						s += " file " + u.Path
					}
					users = append(users, s)
				}
				rows = append(rows, []string{p.Problem, p.SHA256, strings.Join(users, "; "), oneLine(p.Detail)})
			}
			if err := table(a.stdout, rows); err != nil {
				return err
			}
		}
	}
	if len(rep.Problems) > 0 {
		if !a.jsonOut {
			fmt.Fprintf(a.stderr, "imprint: content verify: %d stored %s corrupt or missing: upload the files again (imprint content version) to repair them\n",
				len(rep.Problems), plural(len(rep.Problems), "file is", "files are"))
		}
		return &silentError{status: exitError}
	}
	return nil
}

// downloadTo writes a download to path through a temporary file in the same
// directory, renamed into place only when complete.
func downloadTo(_ context.Context, path string, get func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return 0, err
	}
	n, err := get(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return n, err
	}
	return n, nil
}
