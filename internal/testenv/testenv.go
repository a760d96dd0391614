// Package testenv decides what a test does when a host prerequisite is
// missing: a tool or Debian package, root, a network namespace, a
// reachable Debian mirror. A developer running one test by hand gets a
// skip; under `make test` (whose unit and e2e targets set RequireEnv) the
// test fails and says what to install, so a missing prerequisite can never
// hide behind a skip and let the suite pass untested.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv names the environment variable that turns a missing
// prerequisite from a skip into a failure. The Makefile's unit and e2e
// targets set it.
const RequireEnv = "IMPRINT_TEST_REQUIRE"

// Missing ends t for a missing prerequisite described by format and args,
// which should name what is missing and how to get it (the Debian package
// to install, or "run as root"). It fails t when RequireEnv is set and
// skips it otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("host prerequisite missing: "+format, args...)
		return // only reached with a testing.TB whose Fatalf returns
	}
	t.Skipf("skipping, host prerequisite missing (set "+RequireEnv+"=1 to fail instead): "+format, args...)
}

// Root calls Missing unless the test runs as root; why says what root is
// needed for ("to create network namespaces").
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root %s: run as root", why)
	}
}

// LookPath returns the path of tool on PATH, or calls Missing naming the
// Debian package that provides it.
func LookPath(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		Missing(t, "%s is not installed: apt-get install %s (make deps does)", tool, Package(tool))
	}
	return p
}

// Package is the Debian package that provides the command tool: the
// Makefile's TEST_NEEDS pairs (a test checks they agree) and the other
// commands tests run. An unknown tool is its own package name.
func Package(tool string) string {
	switch tool {
	case "xz":
		return "xz-utils"
	case "sgdisk":
		return "gdisk"
	case "sfdisk", "fdisk":
		return "fdisk"
	case "mdir", "mtype", "mcopy", "mmd", "mformat":
		return "mtools"
	case "fsck.fat", "mkfs.fat", "mkfs.vfat":
		return "dosfstools"
	case "mkfs.ext4", "debugfs", "e2fsck":
		return "e2fsprogs"
	case "mkntfs", "ntfsinfo", "ntfscat", "ntfsls", "ntfs-3g", "ntfssecaudit":
		return "ntfs-3g"
	case "wimlib-imagex":
		return "wimtools"
	case "udp-sender", "udp-receiver":
		return "udpcast"
	case "hivexml", "hivexsh":
		return "libhivex-bin"
	case "depmod":
		return "kmod"
	case "partprobe":
		return "parted"
	case "objcopy":
		return "binutils"
	case "grub-mkrescue", "grub-mkimage":
		return "grub-common"
	case "qemu-system-x86_64":
		return "qemu-system-x86"
	case "ip":
		return "iproute2"
	case "dpkg-deb", "dpkg", "dpkg-query":
		return "dpkg"
	case "systemd-analyze", "systemd-sysusers", "systemd-tmpfiles", "systemctl":
		return "systemd"
	case "readelf":
		return "binutils"
	case "sha256sum":
		return "coreutils"
	case "promtool":
		return "prometheus"
	case "dnsmasq":
		return "dnsmasq-base"
	case "apt-get", "apt-cache":
		return "apt"
	case "losetup":
		return "mount"
	case "go":
		return "golang-go"
	case "sh":
		return "dash"
	}
	return tool
}
