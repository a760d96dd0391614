package disksteps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/disk"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/winboot"
	"github.com/imprint-osd/imprint/internal/windrivers"
)

// InjectDriverPack is the Inject driver pack step: the DriverPack content
// (a folder of INFs, or a WIM of one as DeployR stores packs) goes into the
// applied Windows image offline (internal/windrivers).
type InjectDriverPack struct{ D *Deps }

// Run stages the pack and registers its boot-critical storage drivers.
func (s InjectDriverPack) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	var pack string
	for k, p := range env.Content {
		if strings.EqualFold(k, "DriverPack") {
			pack = p
		}
	}
	if pack == "" {
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "option DriverPack is empty: choose the driver pack")
	}
	if err := needWindowsTarget(env, "Inject driver pack"); err != nil {
		return sequence.Result{}, err
	}
	return injectPack(ctx, s.D, env, pack)
}

func needWindowsTarget(env *sequence.Env, step string) error {
	switch disk.Layout(strings.ToLower(env.Vars.Value(VarOSDiskLayout))) {
	case disk.WindowsUEFI, disk.WindowsBIOS:
		return nil
	}
	return deploy.Errorf(deploy.KindInvalid, "%s needs a Windows target: run Format disk with the Windows layout and Apply operating system first", step)
}

// InjectDrivers is the Inject drivers step: it asks the server for the
// DriverPack versions the run may use, picks the one matching this
// machine by DeployR's rule (windrivers.MatchPack over the gathered Make,
// Model, MakeAlias, ModelAlias and SystemAlias) and injects it as Inject
// driver pack does. With no matching pack it logs so and succeeds: the
// image's own drivers are left to do.
type InjectDrivers struct{ D *Deps }

// Run chooses and injects the pack.
func (s InjectDrivers) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	if err := needWindowsTarget(env, "Inject drivers"); err != nil {
		return sequence.Result{}, err
	}
	if s.D.Packs == nil || s.D.Fetch == nil {
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "Inject drivers needs the server's list of driver packs, which this agent cannot reach")
	}
	packs, err := s.D.Packs.DriverPacks(ctx)
	if err != nil {
		return sequence.Result{}, fmt.Errorf("list driver packs: %w", err)
	}
	v := func(name string) string { return strings.TrimSpace(env.Vars.Value(name)) }
	m := windrivers.Machine{Make: v("Make"), Model: v("Model"), MakeAlias: v("MakeAlias"), ModelAlias: v("ModelAlias"), SystemAlias: v("SystemAlias")}
	match, ok := windrivers.MatchPack(packs, m, s.D.TSInDevelopment)
	if !ok {
		msg := fmt.Sprintf("No driver pack matches this machine (Make %q, Model %q, MakeAlias %q, ModelAlias %q, SystemAlias %q; %d driver pack versions considered): no drivers injected",
			m.Make, m.Model, m.MakeAlias, m.ModelAlias, m.SystemAlias, len(packs))
		fmt.Fprintln(env.Log, msg)
		return sequence.Result{Output: msg}, nil
	}
	fmt.Fprintf(env.Log, "Driver pack %q (%s, %s) matches by %s: Manufacturer %q, Model %q\n",
		match.Pack.Name, match.Pack.Ref(), match.Pack.Status, match.Rule, match.Pack.Manufacturer, match.Pack.Model)
	pack, err := s.D.Fetch(ctx, match.Pack.Ref())
	if err != nil {
		return sequence.Result{}, fmt.Errorf("driver pack %s: %w", match.Pack.Ref(), err)
	}
	env.Vars.SetInternal("DriverPackID", match.Pack.Ref().String())
	res, err := injectPack(ctx, s.D, env, pack)
	if err != nil {
		return res, err
	}
	res.Output = fmt.Sprintf("Driver pack %q (%s) matched by %s. %s", match.Pack.Name, match.Pack.Ref(), match.Rule, res.Output)
	return res, nil
}

// injectPack injects the local driver pack (a folder, or a WIM of one).
func injectPack(ctx context.Context, d *Deps, env *sequence.Env, pack string) (sequence.Result, error) {
	// The content cache keeps a version at DIR/<item>/<version>[/file]:
	// those two name the staged folder.
	name := packName(pack)
	fi, err := os.Stat(pack)
	if err != nil {
		return sequence.Result{}, fmt.Errorf("driver pack: %w", err)
	}
	if !fi.IsDir() {
		if !strings.EqualFold(filepath.Ext(pack), ".wim") {
			return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "the driver pack %s is a file but not a WIM: give a folder of drivers or a WIM of one", filepath.Base(pack))
		}
		dir, err := os.MkdirTemp(d.TempDir, "imprint-drivers-*")
		if err != nil {
			return sequence.Result{}, err
		}
		defer os.RemoveAll(dir)
		if err := disk.ExtractWIM(ctx, pack, 1, dir); err != nil {
			return sequence.Result{}, fmt.Errorf("driver pack: %w", err)
		}
		pack = dir
	}
	spec := env.Vars.Value(VarOSPartition)
	win, err := ResolvePartition(spec)
	if err != nil {
		return sequence.Result{}, err
	}
	root, unmount, err := d.mountWindows(ctx, spec, win)
	if err != nil {
		return sequence.Result{}, err
	}
	defer unmount()
	arch := "amd64"
	if strings.EqualFold(strings.TrimSpace(env.Vars.Value("Architecture")), "arm64") {
		arch = "arm64"
	}
	rep, err := windrivers.Inject(ctx, windrivers.Options{Root: root, Pack: pack, Name: name, Arch: arch, Modified: winboot.FileTime(time.Now()),
		Log: func(f string, a ...any) { fmt.Fprintf(env.Log, f+"\n", a...) }})
	if err != nil {
		return sequence.Result{}, err
	}
	if err := unmount(); err != nil {
		return sequence.Result{}, fmt.Errorf("unmount the Windows partition: %w", err)
	}
	for _, d := range rep.BootDrivers {
		fmt.Fprintf(env.Log, "Boot-critical storage driver %s (%s, %s) registered for %s\n", d.Service, d.INF, d.Class, strings.Join(d.HardwareIDs, ", "))
	}
	for _, p := range rep.Present {
		fmt.Fprintf(env.Log, "Boot-critical driver %s is already in the image; left as it is\n", p)
	}
	msg := fmt.Sprintf("Staged %d INF files in %s and added it to DevicePath; %d boot-critical storage drivers registered", rep.INFs, rep.Staged, len(rep.BootDrivers))
	env.Vars.SetInternal("DriverPackName", name)
	env.Vars.SetInternal("DriverPackMethod", "Offline")
	env.Vars.SetInternal("DriverBootCount", strconv.Itoa(len(rep.BootDrivers)))
	fmt.Fprintln(env.Log, msg)
	return sequence.Result{Output: msg}, nil
}

// packName names the staged folder after the content item and version
// the agent's cache keeps the pack under.
func packName(p string) string {
	p = filepath.Clean(p)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		p = filepath.Dir(p)
	}
	ver, item := filepath.Base(p), filepath.Base(filepath.Dir(p))
	name := item + "_" + ver
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(`\/:*?"<>|`, r) || r < 0x20 {
			return '_'
		}
		return r
	}, name)
}
