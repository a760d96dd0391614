package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/imprint-osd/imprint/internal/disk"
	"github.com/imprint-osd/imprint/internal/lab"
)

const usageLab = `usage: imprint lab [flags]

Boots a QEMU machine that network-boots from the running server, so a task
sequence can be tried end to end before a real machine meets it. The machine
is on QEMU's private user-mode network (no root, no bridge, no DHCP server
touched), so the server's public and boot URLs must name an address of this
host other than loopback: start the server with --cert-host ADDRESS. Its serial
console is this terminal: Ctrl-A X quits, Ctrl-A C is QEMU's monitor. The
disk and the UEFI variables are kept, so the next 'imprint lab' with the same
--name is the same machine (same MAC and UUID) and boots what was deployed:
the server's boot script sends a machine whose last run succeeded to its disk.

Flags:
  --name NAME          the machine (default lab1); its disk and UEFI variables
                       live in DIR/NAME/ (--dir, default $XDG_CACHE_HOME/imprint/lab)
  --firmware uefi|bios (default uefi)
  --secure-boot        UEFI with Secure Boot on and Microsoft's keys enrolled. It
                       boots the boot image's ISO (built into the machine's
                       directory unless --iso is given): network boot with Secure
                       Boot needs a DHCP server naming Imprint
  --iso FILE           boot this ISO (imprint bootimage iso) instead of the network
  --disk-size SIZE     size of a new disk, sparse (default 64G)
  --fresh              start from an empty disk and fresh UEFI variables
  --memory MIB         (default 2048)
  --cpus N             (default 2)
  --nic MODEL          virtio-net-pci (default), e1000 or e1000e
  --sata               the disk on a SATA controller (a Windows without virtio drivers)
  --smbios SPEC        a QEMU -smbios value, e.g. type=1,manufacturer=Dell Inc.,product=OptiPlex 7090
                       (the make and model the agent reports; repeatable)
  --accel kvm|tcg      (default kvm when /dev/kvm can be opened, else tcg: slow)
  --boot-url URL       the server's boot URL (default: the running server's)
  --no-reboot          end when the machine reboots
  --qemu PROGRAM       (default qemu-system-x86_64)
`

func runLab(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint lab", usageLab)
	name := fs.String("name", "lab1", "")
	dir := fs.String("dir", "", "")
	fwName := fs.String("firmware", "uefi", "")
	secure := fs.Bool("secure-boot", false, "")
	iso := fs.String("iso", "", "")
	size := fs.String("disk-size", "64G", "")
	fresh := fs.Bool("fresh", false, "")
	memory := fs.Int("memory", 2048, "")
	cpus := fs.Int("cpus", 2, "")
	nic := fs.String("nic", "virtio-net-pci", "")
	sata := fs.Bool("sata", false, "")
	var smbios listFlag
	fs.Var(&smbios, "smbios", "")
	accel := fs.String("accel", "", "")
	bootURL := fs.String("boot-url", "", "")
	noReboot := fs.Bool("no-reboot", false, "")
	qemu := fs.String("qemu", "qemu-system-x86_64", "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	hint := "run 'imprint lab -h' for usage"
	fw, err := lab.ParseFirmware(*fwName)
	if err != nil {
		return usagef("lab: "+err.Error(), hint)
	}
	if *secure && fw != lab.UEFI {
		return usagef("lab: --secure-boot is for UEFI machines", hint)
	}
	if *name == "" || strings.ContainsAny(*name, `/\`) || *name == "." || *name == ".." {
		return usagef(fmt.Sprintf("lab: --name %q: want a plain name", *name), hint)
	}
	diskSize, err := disk.ParseSize(*size)
	if err != nil {
		return usagef("lab: --disk-size: "+err.Error(), hint)
	}
	switch *nic {
	case "virtio-net-pci", "e1000", "e1000e":
	default:
		return usagef(fmt.Sprintf("lab: --nic %q: want virtio-net-pci, e1000 or e1000e", *nic), hint)
	}
	qemuPath, err := exec.LookPath(*qemu)
	if err != nil {
		return fmt.Errorf("lab: %s is not installed: apt-get install qemu-system-x86", *qemu)
	}

	// The server: its URLs must be reachable from inside the VM.
	c, err := a.client()
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("lab: the server is not answering (start it with 'make run' or 'imprint server'): %w", err)
	}
	boot := *bootURL
	if boot == "" {
		boot = info.BootURL
	}
	if err := lab.CheckReachable("the server's boot URL", boot); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := lab.CheckReachable("the server's public URL", info.PublicURL); err != nil {
		return fmt.Errorf("lab: %w", err)
	}

	if *dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("lab: %w (give --dir)", err)
		}
		*dir = filepath.Join(cache, "imprint", "lab")
	}
	mdir := filepath.Join(*dir, *name)
	if err := os.MkdirAll(mdir, 0o700); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	m := lab.Machine{Firmware: fw, Disk: filepath.Join(mdir, "disk.img"), DiskSize: diskSize, NIC: *nic,
		Net: lab.UserNet(strings.TrimSuffix(boot, "/") + "/boot.ipxe"), ISO: *iso, NoReboot: *noReboot,
		SecureBoot: *secure, SATA: *sata, SMBIOS: smbios, MemoryMiB: *memory, CPUs: *cpus, Accel: *accel,
		Interactive: a.stdinTerminal()}
	m.MAC, m.UUID = lab.Identity(*name)
	if fw == lab.UEFI {
		m.Vars = filepath.Join(mdir, "vars.fd")
	}
	if m.Accel == "" {
		m.Accel = "tcg"
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
			f.Close()
			m.Accel = "kvm"
		}
	}
	if *fresh {
		for _, f := range []string{m.Disk, m.Vars} {
			if f != "" {
				if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("lab: --fresh: %w", err)
				}
			}
		}
	}
	if *secure && m.ISO == "" {
		// iPXE's option ROM is unsigned and Secure Boot PXE needs the
		// site's DHCP server to name us: boot the signed chain from a CD.
		m.ISO = filepath.Join(mdir, "imprint.iso")
		fmt.Fprintf(a.stderr, "lab: building the boot image's ISO for Secure Boot into %s\n", m.ISO)
		if _, _, _, err := a.buildISO(ctx, m.ISO, ""); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	// Secure Boot would refuse iPXE's unsigned option ROM anyway.
	m.NoOptionROM = m.SecureBoot
	if err := m.Prepare(); err != nil {
		return err
	}
	if m.Accel == "tcg" {
		fmt.Fprintln(a.stderr, "lab: /dev/kvm cannot be opened: emulating the CPU (tcg), which is slow")
	}
	fmt.Fprintf(a.stderr, "lab: %s (%s%s, %s disk %s) booting from %s\n", *name, fw, map[bool]string{true: " with Secure Boot"}[*secure],
		disk.FormatSize(diskSize), m.Disk, firstNonEmpty(m.ISO, boot))
	if m.Interactive {
		fmt.Fprintln(a.stderr, "lab: Ctrl-A X quits")
	}
	// SIGINT or SIGTERM to this process ends QEMU too (in a terminal,
	// QEMU's raw mode hands Ctrl-C to the machine instead).
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd := exec.CommandContext(ctx, qemuPath, m.Args()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted: the machine is off, its disk kept
		}
		return fmt.Errorf("lab: qemu: %w", err)
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
