package windrivers

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/hive"
	"github.com/imprint-osd/imprint/internal/winboot"
)

// StageDir is where driver packs are staged on the Windows volume, and
// DevicePathEntry the DevicePath entry that makes Windows search it
// (Windows searches the subfolders of each entry).
const (
	StageDir        = `Windows\Imprint\Drivers`
	DevicePathEntry = `%SystemRoot%\Imprint\Drivers`
	devicePathKey   = `Microsoft\Windows\CurrentVersion`
)

// Options of Inject.
type Options struct {
	Root string // the mounted Windows volume
	Pack string // the driver pack: a directory of INFs and their files
	Name string // the pack's folder name under StageDir
	Arch string // amd64 (default), x86, arm64
	// Modified is the FILETIME stamped on changed hive keys.
	Modified uint64
	// Log receives one line per skipped INF (may be nil).
	Log func(format string, args ...any)
}

// Report says what Inject did.
type Report struct {
	INFs        int      // INF files in the pack
	Staged      string   // where the pack is, relative to the volume
	BootDrivers []Driver // registered in the SYSTEM hive
	Present     []string // boot-critical services the image already had
}

// Inject stages the pack, adds it to DevicePath and registers its
// boot-critical storage drivers in the offline SYSTEM hive.
func Inject(ctx context.Context, o Options) (*Report, error) {
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.Name == "" || strings.ContainsAny(o.Name, `\/:*?"<>|`) || o.Name == "." || o.Name == ".." {
		return nil, deploy.Errorf(deploy.KindInvalid, "driver pack name %q cannot be a folder name", o.Name)
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	// Read every INF first: nothing is written for a pack with no driver.
	type infFile struct{ path, name string }
	var infs []infFile
	err := filepath.WalkDir(o.Pack, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && strings.EqualFold(filepath.Ext(p), ".inf") {
			infs = append(infs, infFile{p, e.Name()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read driver pack: %w", err)
	}
	if len(infs) == 0 {
		return nil, deploy.Errorf(deploy.KindInvalid, "the driver pack has no .inf file: it holds no Windows driver")
	}
	rep := &Report{INFs: len(infs)}
	type boot struct {
		Driver
		sys string // the .sys file in the pack
	}
	var boots []boot
	for _, inf := range infs {
		b, err := os.ReadFile(inf.path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", inf.name, err)
		}
		f, err := ParseINF(b)
		if err != nil {
			logf("Skipped %s: %v", inf.name, err)
			continue
		}
		ds, err := BootCritical(inf.name, f, o.Arch)
		if err != nil {
			logf("Skipped %s: %v", inf.name, err)
			continue
		}
		for _, d := range ds {
			sys, err := findFile(filepath.Dir(inf.path), d.Binary)
			if err != nil {
				logf("Skipped boot driver %s of %s: %s is not in the pack", d.Service, inf.name, d.Binary)
				continue
			}
			boots = append(boots, boot{d, sys})
		}
	}

	// Stage the pack.
	stage, err := winboot.MkdirCI(o.Root, StageDir+`\`+o.Name)
	if err != nil {
		return nil, fmt.Errorf("stage driver pack: %w", err)
	}
	if err := copyTree(ctx, o.Pack, stage); err != nil {
		return nil, fmt.Errorf("stage driver pack: %w", err)
	}
	rep.Staged = StageDir + `\` + o.Name

	if err := winboot.EditHive(o.Root, "SOFTWARE", o.Modified, func(h *hive.Hive) error {
		return addDevicePath(h, o.Modified)
	}); err != nil {
		return nil, fmt.Errorf("DevicePath: %w", err)
	}
	if len(boots) == 0 {
		return rep, nil
	}
	drivers, err := winboot.MkdirCI(o.Root, `Windows\System32\drivers`)
	if err != nil {
		return nil, err
	}
	err = winboot.EditHive(o.Root, "SYSTEM", o.Modified, func(h *hive.Hive) error {
		cs, err := controlSet(h)
		if err != nil {
			return err
		}
		services, err := cs.Create("Services", o.Modified)
		if err != nil {
			return err
		}
		registered := map[string]bool{}
		for _, b := range boots {
			if registered[strings.ToLower(b.Service)] {
				continue // a second install section of the same service
			}
			if services.Subkey(b.Service) != nil {
				// An inbox driver (or one injected before): leave it be.
				rep.Present = append(rep.Present, b.Service)
				continue
			}
			if err := register(h, cs, b.Driver, o.Modified); err != nil {
				return fmt.Errorf("register %s: %w", b.Service, err)
			}
			registered[strings.ToLower(b.Service)] = true
			rep.BootDrivers = append(rep.BootDrivers, b.Driver)
		}
		// The binaries go in before the hive is written: a hive naming a
		// missing driver would stop the boot.
		for _, d := range rep.BootDrivers {
			var sys string
			for _, b := range boots {
				if b.Service == d.Service {
					sys = b.sys
					break
				}
			}
			data, err := os.ReadFile(sys)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(drivers, d.Binary), data, 0o644); err != nil {
				return fmt.Errorf("copy %s: %w", d.Binary, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("SYSTEM hive: %w", err)
	}
	return rep, nil
}

// addDevicePath appends DevicePathEntry to SOFTWARE's DevicePath once,
// keeping its type (REG_EXPAND_SZ) and what is there.
func addDevicePath(h *hive.Hive, filetime uint64) error {
	k, err := h.Root.Create(devicePathKey, filetime)
	if err != nil {
		return err
	}
	cur := `%SystemRoot%\inf`
	typ := hive.ExpandSZ
	if v, ok := k.Value("DevicePath"); ok {
		cur, typ = v.String(), v.Type
		if typ != hive.SZ && typ != hive.ExpandSZ {
			return fmt.Errorf("DevicePath has registry type %d, not a string", typ)
		}
	}
	for _, e := range strings.Split(cur, ";") {
		if strings.EqualFold(strings.TrimSpace(e), DevicePathEntry) {
			return nil
		}
	}
	if cur != "" && !strings.HasSuffix(cur, ";") {
		cur += ";"
	}
	k.Set("DevicePath", typ, hive.EncodeSZ(cur+DevicePathEntry))
	k.Modified = filetime
	return nil
}

// controlSet is SYSTEM's current control set (Select\Current).
func controlSet(h *hive.Hive) (*hive.Key, error) {
	n := uint32(1)
	if sel := h.Root.Lookup("Select"); sel != nil {
		if v, ok := sel.Value("Current"); ok && v.Uint32() > 0 {
			n = v.Uint32()
		}
	}
	name := fmt.Sprintf("ControlSet%03d", n)
	cs := h.Root.Subkey(name)
	if cs == nil {
		return nil, fmt.Errorf("the SYSTEM hive has no %s (Select\\Current)", name)
	}
	return cs, nil
}

// register writes the service and the device binding (§5.1).
func register(h *hive.Hive, cs *hive.Key, d Driver, ft uint64) error {
	svc, err := cs.Create(`Services\`+d.Service, ft)
	if err != nil {
		return err
	}
	svc.SetDWORD("Type", d.Type)
	svc.SetDWORD("Start", 0) // boot
	svc.SetDWORD("ErrorControl", d.ErrorControl)
	svc.Set("ImagePath", hive.ExpandSZ, hive.EncodeSZ(`system32\drivers\`+d.Binary))
	svc.SetString("Group", d.Group)
	if db := h.Root.Subkey("DriverDatabase"); db != nil {
		label := d.INF + "_" + d.Arch + "_0000000000000000"
		files, err := db.Create(`DriverInfFiles\`+d.INF, ft)
		if err != nil {
			return err
		}
		files.Set("", hive.MultiSZ, hive.EncodeMultiSZ(label))
		files.SetString("Active", label)
		files.Set("Configurations", hive.MultiSZ, hive.EncodeMultiSZ(d.Install))
		pkg, err := db.Create(`DriverPackages\`+label, ft)
		if err != nil {
			return err
		}
		guid, err := winboot.ParseGUID(d.ClassGUID)
		if err != nil {
			return err
		}
		version := make([]byte, 48)
		binary.LittleEndian.PutUint32(version, 0x0009ff00)
		copy(version[8:], guid[:])
		pkg.Set("Version", hive.Binary, version)
		conf, err := pkg.Create(`Configurations\`+d.Install, ft)
		if err != nil {
			return err
		}
		conf.SetDWORD("ConfigFlags", 0)
		conf.SetString("Service", d.Service)
		for _, id := range d.HardwareIDs {
			bus, rest, ok := strings.Cut(id, `\`)
			if !ok {
				continue
			}
			dev, err := db.Create(`DeviceIds\`+bus+`\`+rest, ft)
			if err != nil {
				return err
			}
			dev.Set(d.INF, hive.Binary, []byte{0x01, 0xff, 0x00, 0x00})
			desc, err := pkg.Create(`Descriptors\`+bus+`\`+rest, ft)
			if err != nil {
				return err
			}
			desc.SetString("Configuration", d.Install)
		}
		return nil
	}
	// Windows 7 and earlier.
	for _, id := range d.HardwareIDs {
		k, err := cs.Create(`Control\CriticalDeviceDatabase\`+strings.ReplaceAll(id, `\`, "#"), ft)
		if err != nil {
			return err
		}
		k.SetString("Service", d.Service)
		k.SetString("ClassGUID", d.ClassGUID)
	}
	return nil
}

// findFile finds name (case-insensitively) in dir or below it.
func findFile(dir, name string) (string, error) {
	var found []string
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && strings.EqualFold(e.Name(), name) {
			found = append(found, p)
		}
		return nil
	})
	if len(found) == 0 {
		return "", fs.ErrNotExist
	}
	sort.Strings(found) // the shallowest and first by name, deterministically
	sort.SliceStable(found, func(i, j int) bool {
		return strings.Count(found[i], string(filepath.Separator)) < strings.Count(found[j], string(filepath.Separator))
	})
	return found[0], nil
}

func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case e.IsDir():
			return os.MkdirAll(to, 0o755)
		case e.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
		return nil
	})
}
