package disksteps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/filesystem"
	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/disk"
	"github.com/imprint-osd/imprint/internal/hosttool"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/unattend"
	"github.com/imprint-osd/imprint/internal/winboot"
)

// defaultEFIVars is where Linux shows the firmware's variables.
const defaultEFIVars = "/sys/firmware/efi/efivars"

// windowsTarget is a Windows installation Prepare works on: the NTFS
// volume mounted at Root, the ESP and the disk's GPT.
type windowsTarget struct {
	Root          string
	Win, ESP      disk.Partition
	GPT           *winboot.GPT
	unmount       func() error
	espFS         filesystem.FileSystem
	closeESP      func() error
	onImageFile   bool
	espSpec, spec string
}

func (w *windowsTarget) close() error {
	var errs []error
	if w.closeESP != nil {
		errs = append(errs, w.closeESP())
		w.closeESP = nil
	}
	if w.unmount != nil {
		errs = append(errs, w.unmount())
		w.unmount = nil
	}
	return errors.Join(errs...)
}

// openWindows mounts the Windows partition named by OSPartition and opens
// the ESP of the same disk.
func (d *Deps) openWindows(ctx context.Context, env *sequence.Env) (*windowsTarget, error) {
	spec, espSpec := env.Vars.Value(VarOSPartition), env.Vars.Value(VarESPPartition)
	if spec == "" || espSpec == "" {
		return nil, deploy.Errorf(deploy.KindInvalid, "OSPartition and ESPPartition must be set (run Format disk with a Windows UEFI layout)")
	}
	win, err := ResolvePartition(spec)
	if err != nil {
		return nil, err
	}
	esp, err := ResolvePartition(espSpec)
	if err != nil {
		return nil, err
	}
	if win.DiskPath != esp.DiskPath {
		return nil, deploy.Errorf(deploy.KindInvalid, "the Windows partition (%s) and the ESP (%s) are on different disks", spec, espSpec)
	}
	f, err := os.Open(win.DiskPath)
	if err != nil {
		return nil, fmt.Errorf("read partition table: %w", err)
	}
	g, err := winboot.ReadGPT(f)
	f.Close()
	if err != nil {
		return nil, deploy.Errorf(deploy.KindInvalid, "%s: %v: a Windows UEFI target needs a GPT disk", win.DiskPath, err)
	}
	dir, unmount, err := d.mountWindows(ctx, spec, win)
	if err != nil {
		return nil, err
	}
	w := &windowsTarget{Root: dir, Win: win, ESP: esp, GPT: g, unmount: unmount, onImageFile: win.Device == "", espSpec: espSpec, spec: spec}
	dd, err := diskfs.Open(esp.DiskPath, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		w.close()
		return nil, fmt.Errorf("open %s: %w", esp.DiskPath, err)
	}
	w.closeESP = dd.Close
	if w.espFS, err = dd.GetFilesystem(esp.Number); err != nil {
		w.close()
		return nil, fmt.Errorf("ESP (partition %d of %s): %w", esp.Number, esp.DiskPath, err)
	}
	return w, nil
}

// mountWindows mounts the Windows partition (spec, resolved as win).
func (d *Deps) mountWindows(ctx context.Context, spec string, win disk.Partition) (string, func() error, error) {
	mount := d.MountNTFS
	if mount == nil {
		mount = func(ctx context.Context, _ string) (string, func() error, error) {
			return mountNTFS(ctx, win, d.TempDir)
		}
	}
	dir, unmount, err := mount(ctx, spec)
	if err != nil {
		return "", nil, fmt.Errorf("mount the Windows partition: %w", err)
	}
	return dir, unmount, nil
}

// fatESP writes the ESP through go-diskfs's FAT32.
type fatESP struct{ fs filesystem.FileSystem }

func (e fatESP) MkdirAll(p string) error { return e.fs.Mkdir(p) }

func (e fatESP) WriteFile(p string, b []byte) error {
	if err := e.fs.Mkdir(path.Dir(p)); err != nil {
		return err
	}
	f, err := e.fs.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// prepareWindows is Prepare operating system for a Windows UEFI target.
func (s PrepareOS) prepareWindows(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	// The answer file first: bad settings fail before the disk is touched.
	ao, err := AnswerOptions(env)
	if err != nil {
		return sequence.Result{}, err
	}
	answer, err := unattend.Build(ao)
	if err != nil {
		return sequence.Result{}, err
	}
	w, err := s.D.openWindows(ctx, env)
	if err != nil {
		return sequence.Result{}, fmt.Errorf("Prepare operating system: %w", err)
	}
	defer w.close()
	locale := strings.TrimSpace(env.Vars.Value("UILanguage"))
	now := winboot.FileTime(time.Now())
	res, err := winboot.Install(ctx, fatESP{w.espFS}, winboot.InstallOptions{
		WinRoot: w.Root, GPT: w.GPT, Windows: w.Win.Number, ESP: w.ESP.Number, Locale: locale,
		StoreOptions: winboot.StoreOptions{Modified: now}})
	if err != nil {
		return sequence.Result{}, err
	}
	fmt.Fprintf(env.Log, "Copied %d boot files to the ESP (%s) and wrote %s\n", len(res.Files)-1, w.espSpec, winboot.BCDPath)
	fmt.Fprintf(env.Log, "BCD: Windows Boot Loader %s %q on disk %s partition %s\n", res.Loader, res.Description, w.GPT.DiskID, mustPart(w.GPT, w.Win.Number).ID)
	written, err := unattend.Install(w.Root, answer, now)
	if err != nil {
		return sequence.Result{}, err
	}
	// Never the content: it holds the hidden Administrator password and
	// the domain join blob.
	fmt.Fprintf(env.Log, "Continuation %s; wrote %s\n", ao.Method, strings.Join(written, ", "))
	if s.D.StageWindows == nil {
		return sequence.Result{}, fmt.Errorf("Prepare operating system: no Windows agent to stage for the continuation (only imprint-agent can)")
	}
	staged, err := s.D.StageWindows(ctx, w.Root)
	if err != nil {
		return sequence.Result{}, fmt.Errorf("Prepare operating system: %w", err)
	}
	fmt.Fprintf(env.Log, "Staged the Windows agent (SHA-256 %s) as ProgramData\\Imprint\\imprint-agent.exe and its state directory ProgramData\\Imprint\\state (SYSTEM and Administrators only)\n", staged)
	if err := w.close(); err != nil {
		return sequence.Result{}, fmt.Errorf("unmount the Windows partition: %w", err)
	}
	msg := fmt.Sprintf("Made Windows bootable (UEFI): %s", res.Description)
	s.firmwareEntry(env, w)
	fmt.Fprintln(env.Log, msg)
	return sequence.Result{Output: msg}, nil
}

func mustPart(g *winboot.GPT, n int) winboot.GPTPartition {
	p, _ := g.Partition(n)
	return p
}

// firmwareEntry adds "Windows Boot Manager" to the firmware's boot menu
// when the machine has efivars; without them (or on an image file) the
// fallback \EFI\Boot\bootx64.efi is what the firmware starts, which is
// also what bcdboot /s relies on. A failure is logged, not fatal.
func (s PrepareOS) firmwareEntry(env *sequence.Env, w *windowsTarget) {
	dir := s.D.EFIVarsDir
	if dir == "" {
		dir = defaultEFIVars
	}
	if w.onImageFile && s.D.EFIVarsDir == "" {
		fmt.Fprintln(env.Log, "No firmware boot entry: the target is a disk image file")
		return
	}
	if _, err := os.Stat(dir); err != nil {
		fmt.Fprintln(env.Log, "No firmware boot entry: no efivars (the firmware starts \\EFI\\Boot\\bootx64.efi)")
		return
	}
	opt := winboot.LoadOption("Windows Boot Manager", mustPart(w.GPT, w.ESP.Number), `\EFI\Microsoft\Boot\bootmgfw.efi`, nil)
	n, err := winboot.AddBootEntry(winboot.EFIVarFS{Dir: dir, Mutable: clearImmutable}, opt)
	if err != nil {
		fmt.Fprintf(env.Log, "Warning: could not add the firmware boot entry (%v); the firmware can still start \\EFI\\Boot\\bootx64.efi\n", err)
		return
	}
	fmt.Fprintf(env.Log, "Firmware boot entry Boot%04X \"Windows Boot Manager\", first in BootOrder\n", n)
}

// clearImmutable clears the immutable flag efivarfs puts on variables.
func clearImmutable(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return nil // not supported here (not efivarfs): nothing to clear
	}
	const immutable = 0x10 // FS_IMMUTABLE_FL
	if flags&immutable == 0 {
		return nil
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^immutable))
}

// MountWindows mounts the Windows (NTFS) partition spec read-write, as
// Prepare operating system does: a device, or a partition of an image file
// through a loop device.
func MountWindows(ctx context.Context, spec, tmpDir string) (string, func() error, error) {
	p, err := ResolvePartition(spec)
	if err != nil {
		return "", nil, err
	}
	return mountNTFS(ctx, p, tmpDir)
}

// mountNTFS mounts NTFS partition p read-write: the kernel's ntfs3 driver
// when it has one, else ntfs-3g (FUSE). A partition of an image file is
// first attached to a loop device at its offset.
func mountNTFS(ctx context.Context, p disk.Partition, tmpDir string) (string, func() error, error) {
	dev, detach := p.Device, func() error { return nil }
	if dev == "" {
		out, err := exec.CommandContext(ctx, hosttool.Path("losetup"), "--find", "--show", "--offset", strconv.FormatInt(p.Start, 10),
			"--sizelimit", strconv.FormatInt(p.Size, 10), p.DiskPath).CombinedOutput()
		if err != nil {
			return "", nil, fmt.Errorf("losetup %s at %d: %w: %s", p.DiskPath, p.Start, err, bytes.TrimSpace(out))
		}
		dev = strings.TrimSpace(string(out))
		detach = func() error {
			if out, err := exec.Command(hosttool.Path("losetup"), "-d", dev).CombinedOutput(); err != nil {
				return fmt.Errorf("losetup -d %s: %w: %s", dev, err, bytes.TrimSpace(out))
			}
			return nil
		}
	}
	dir, err := os.MkdirTemp(tmpDir, "imprint-windows-*")
	if err != nil {
		detach()
		return "", nil, err
	}
	if err := unix.Mount(dev, dir, "ntfs3", 0, ""); err != nil {
		out, err2 := exec.CommandContext(ctx, hosttool.Path("ntfs-3g"), dev, dir).CombinedOutput()
		if err2 != nil {
			_ = os.Remove(dir)
			detach()
			return "", nil, fmt.Errorf("mount %s: ntfs3: %v; ntfs-3g: %v: %s", dev, err, err2, bytes.TrimSpace(out))
		}
	}
	return dir, func() error {
		unix.Sync()
		err := unix.Unmount(dir, 0)
		_ = os.Remove(dir)
		return errors.Join(err, detach())
	}, nil
}
