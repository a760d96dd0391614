// Package lab describes a QEMU machine that network-boots into Imprint:
// the firmware (OVMF or SeaBIOS, optionally with Secure Boot), its disk,
// its NIC with iPXE's option ROM, and QEMU's command line for it. The
// `imprint lab` command and the end-to-end tests build their machines
// with it, so what a user tries on a laptop is what CI boots.
package lab

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Firmware is the machine's firmware.
type Firmware int

const (
	UEFI Firmware = iota // OVMF on q35
	BIOS                 // SeaBIOS on i440fx
)

// String is the firmware's name on the command line.
func (f Firmware) String() string {
	if f == BIOS {
		return "bios"
	}
	return "uefi"
}

// ParseFirmware reads "uefi" or "bios".
func ParseFirmware(s string) (Firmware, error) {
	switch strings.ToLower(s) {
	case "uefi", "efi":
		return UEFI, nil
	case "bios", "legacy":
		return BIOS, nil
	}
	return 0, fmt.Errorf("firmware %q: want uefi or bios", s)
}

// Host files the machines use, from Debian's ovmf and ipxe-qemu.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// Secure Boot: OVMF built with it (SMM), and variables with
	// Microsoft's keys enrolled (KEK, db with the Windows and UEFI CAs).
	ovmfCodeSecure = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	ovmfVarsMS     = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	romDir         = "/usr/lib/ipxe/qemu"
)

// MissingError is a host file the machine needs that is not there.
type MissingError struct {
	Path    string
	Package string // the Debian package that installs it
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s is not there: apt-get install %s", e.Path, e.Package)
}

// Machine is one emulated machine.
type Machine struct {
	Firmware Firmware
	// Disk is a raw disk image, created sparse with DiskSize when missing
	// (an existing one is kept, so a deployed OS boots again).
	Disk     string
	DiskSize int64
	// Vars is the UEFI variable store (boot entries survive a restart of
	// QEMU); copied from OVMF's template when missing. UEFI only.
	Vars string
	// NIC is the QEMU network device: virtio-net-pci (default) or e1000.
	NIC string
	// MAC and UUID name the machine to the server (its runs and its next
	// boot are kept under them); empty means QEMU's defaults, the same for
	// every machine. Identity derives both from a name.
	MAC, UUID string
	// Net is the -netdev of the NIC (its id must be n0); see UserNet.
	Net string
	// ISO, when set, is attached as a CD that the firmware boots first.
	ISO string
	// NoReboot makes a guest reboot end QEMU instead.
	NoReboot bool
	// NoOptionROM runs the NIC without iPXE's option ROM (UEFI only), so
	// OVMF's own driver and PXE client boot it instead of iPXE.
	NoOptionROM bool
	// SecureBoot runs OVMF's Secure Boot build with Microsoft's keys
	// enrolled on a q35 machine with SMM (UEFI only). iPXE's option ROM is
	// unsigned, so it goes with NoOptionROM or ISO.
	SecureBoot bool
	// SATA puts the disk on q35's AHCI controller (UEFI only) instead of
	// virtio-blk, for a Windows with no virtio driver.
	SATA bool
	// SMBIOS are -smbios arguments (type=1,manufacturer=M,product=P: the
	// make and model the agent's gather reports).
	SMBIOS []string
	// MemoryMiB and CPUs size the machine (default 1024 MiB, 1 CPU);
	// Accel is QEMU's -accel (default: QEMU's, TCG).
	MemoryMiB, CPUs int
	Accel           string
	// Interactive multiplexes QEMU's monitor with the serial console on
	// stdio (Ctrl-A X quits, Ctrl-A C is the monitor); otherwise the
	// console alone is on stdio, for a program reading it.
	Interactive bool
}

// UserNet is a -netdev on QEMU's private user-mode network: the machine
// reaches the host as 10.0.2.2 and its DHCP names bootURL as the boot
// file, which iPXE fetches.
func UserNet(bootURL string) string {
	return "user,id=n0,bootfile=" + bootURL
}

// Identity is a stable MAC (QEMU's 52:54:00 prefix) and SMBIOS UUID for
// the machine called name, so two lab machines are two machines to the
// server and one machine started again is the same one.
func Identity(name string) (mac, uuid string) {
	h := sha256.Sum256([]byte("imprint lab machine\x00" + name))
	mac = fmt.Sprintf("52:54:00:%02x:%02x:%02x", h[0], h[1], h[2])
	u := h[3:19]
	u[6] = u[6]&0x0f | 0x40 // version 4 layout
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	uuid = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	return mac, uuid
}

// GuestHost is the host's address as a machine on UserNet sees it.
const GuestHost = "10.0.2.2"

// CheckReachable returns an error when a machine on UserNet could not
// reach u: a loopback host is the machine's own, not the server's.
func CheckReachable(what, u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return fmt.Errorf("%s %q is not a URL", what, u)
	}
	h := p.Hostname()
	ip := net.ParseIP(h)
	if h == "localhost" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return fmt.Errorf("%s %s names %s, which is the VM itself, not this host: start the server with --cert-host ADDRESS, an address of this host other than loopback (its public and boot URLs follow the first --cert-host)", what, u, h)
	}
	return nil
}

// romFile is the iPXE option ROM for a NIC: for OVMF the efi-*.rom file
// (QEMU's default for q35 too, given explicitly). SeaBIOS never ran the
// ROM when romfile was given (the NIC was not even offered as a boot
// device, with efi-*.rom or pxe-*.rom), so a BIOS machine uses QEMU's
// default and only the file's presence is checked.
func romFile(nic string, fw Firmware) string {
	prefix := "efi-"
	if fw == BIOS {
		prefix = "pxe-"
	}
	switch nic {
	case "e1000", "e1000e":
		return filepath.Join(romDir, prefix+nic+".rom")
	default:
		return filepath.Join(romDir, prefix+"virtio.rom")
	}
}

// firmwareFiles are OVMF's code and variable template for m.
func (m *Machine) firmwareFiles() (code, vars string) {
	if m.SecureBoot {
		return ovmfCodeSecure, ovmfVarsMS
	}
	return ovmfCode, ovmfVars
}

// Prepare fills in defaults, checks the combination and the host files,
// and creates the disk and the UEFI variables when they are missing. A
// missing host file is a *MissingError.
func (m *Machine) Prepare() error {
	if m.NIC == "" {
		m.NIC = "virtio-net-pci"
	}
	m.MemoryMiB, m.CPUs = max(m.MemoryMiB, 1024), max(m.CPUs, 1)
	if m.Net == "" {
		return errors.New("lab: the machine has no network (Net)")
	}
	if m.Disk == "" {
		return errors.New("lab: the machine has no disk")
	}
	if m.Firmware != UEFI {
		switch {
		case m.SecureBoot:
			return errors.New("lab: Secure Boot is for UEFI machines")
		case m.NoOptionROM:
			return errors.New("lab: booting without iPXE's option ROM is for UEFI machines: SeaBIOS has no network driver of its own")
		case m.SATA:
			return errors.New("lab: the SATA disk is for UEFI (q35) machines")
		}
	}
	if !m.NoOptionROM {
		if rom := romFile(m.NIC, m.Firmware); !exists(rom) {
			return &MissingError{rom, "ipxe-qemu"}
		}
	}
	if m.Firmware == UEFI {
		code, tmpl := m.firmwareFiles()
		for _, f := range []string{code, tmpl} {
			if !exists(f) {
				return &MissingError{f, "ovmf"}
			}
		}
		if m.Vars == "" {
			return errors.New("lab: a UEFI machine needs a variable store file (Vars)")
		}
		if !exists(m.Vars) {
			if err := copyFile(tmpl, m.Vars); err != nil {
				return fmt.Errorf("lab: UEFI variables: %w", err)
			}
		}
	}
	if m.ISO != "" && !exists(m.ISO) {
		return fmt.Errorf("lab: ISO %s: %w", m.ISO, os.ErrNotExist)
	}
	if !exists(m.Disk) {
		if m.DiskSize <= 0 {
			return fmt.Errorf("lab: disk %s does not exist and no size was given", m.Disk)
		}
		f, err := os.OpenFile(m.Disk, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("lab: disk: %w", err)
		}
		err = f.Truncate(m.DiskSize) // sparse
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(m.Disk)
			return fmt.Errorf("lab: disk: %w", err)
		}
	}
	return nil
}

// Args is QEMU's command line for m (after the program name), for
// qemu-system-x86_64. Call Prepare first.
func (m *Machine) Args() []string {
	args := []string{
		"-cpu", "max", // RDRAND: without it the guest's getrandom blocks DHCP for minutes
		"-m", strconv.Itoa(m.MemoryMiB), "-smp", strconv.Itoa(m.CPUs),
		"-nographic",
	}
	if m.Interactive {
		args = append(args, "-serial", "mon:stdio")
	} else {
		args = append(args, "-serial", "stdio", "-monitor", "none")
	}
	args = append(args,
		"-netdev", m.Net,
		"-drive", "file="+m.Disk+",if=none,id=d0,format=raw")
	nicIndex, diskIndex := 2, 1
	if m.ISO != "" {
		args = append(args, "-drive", "file="+m.ISO+",if=none,id=cd0,media=cdrom,readonly=on")
		nicIndex, diskIndex = 3, 2
	}
	switch m.Firmware {
	case UEFI:
		code, _ := m.firmwareFiles()
		if m.SecureBoot {
			// SMM, and flash writable only from SMM: the Secure Boot
			// build refuses to run without them.
			args = append(args, "-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on")
		} else {
			args = append(args, "-machine", "q35")
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,file="+m.Vars)
		if m.ISO != "" {
			args = append(args, "-device", "ide-cd,drive=cd0,bootindex=1")
		}
		disk := fmt.Sprintf("virtio-blk-pci,drive=d0,bootindex=%d", diskIndex)
		if m.SATA {
			disk = fmt.Sprintf("ide-hd,drive=d0,bus=ide.0,bootindex=%d", diskIndex)
		}
		rom := romFile(m.NIC, m.Firmware)
		if m.NoOptionROM {
			rom = "" // romfile= with no file: QEMU loads none
		}
		args = append(args,
			"-device", disk,
			"-device", fmt.Sprintf("%s,netdev=n0,bootindex=%d,romfile=%s%s", m.NIC, nicIndex, rom, m.macOpt()))
	case BIOS:
		args = append(args, "-machine", "pc")
		if m.ISO != "" {
			args = append(args, "-device", "ide-cd,drive=cd0,bootindex=1",
				"-device", fmt.Sprintf("virtio-blk-pci,drive=d0,bootindex=%d", diskIndex),
				"-device", m.NIC+",netdev=n0"+m.macOpt())
		} else {
			// -boot n: SeaBIOS tries the network first, so the empty disk
			// is not even considered.
			args = append(args, "-boot", "n",
				"-device", "virtio-blk-pci,drive=d0",
				"-device", m.NIC+",netdev=n0"+m.macOpt())
		}
	}
	if m.NoReboot {
		args = append(args, "-no-reboot")
	}
	if m.Accel != "" {
		args = append(args, "-accel", m.Accel)
	}
	if m.UUID != "" {
		args = append(args, "-uuid", m.UUID)
	}
	for _, sm := range m.SMBIOS {
		args = append(args, "-smbios", sm)
	}
	return args
}

func (m *Machine) macOpt() string {
	if m.MAC == "" {
		return ""
	}
	return ",mac=" + m.MAC
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return err
	}
	return nil
}
