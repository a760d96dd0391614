//go:build e2e

// Command osinit is /init of the operating system the e2e tests deploy: a
// UKI (kernel plus this program) on the ESP, booted by the firmware from
// the deployed disk. It mounts the deployed ext4 root read-only, reads
// /etc/hostname and /etc/imprint-marker and prints
//
//	IMPRINT-DEPLOYED-OK hostname=H marker=M
//
// (or IMPRINT-DEPLOYED-FAILED: reason) on the console, then powers off.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const root = "/dev/vda2"

func main() {
	if err := run(); err != nil {
		fmt.Printf("IMPRINT-DEPLOYED-FAILED: %v\n", err)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}

func run() error {
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	fmt.Println("osinit: booted from the deployed disk")
	if err := loadModules(); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(root); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within 15s", root)
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.MkdirAll("/root", 0o755)
	if err := unix.Mount(root, "/root", "ext4", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount %s: %w", root, err)
	}
	host, err := os.ReadFile("/root/etc/hostname")
	if err != nil {
		return err
	}
	marker, err := os.ReadFile("/root/etc/imprint-marker")
	if err != nil {
		return err
	}
	fmt.Printf("IMPRINT-DEPLOYED-OK hostname=%s marker=%s\n", strings.TrimSpace(string(host)), strings.TrimSpace(string(marker)))
	return unix.Unmount("/root", 0)
}

// loadModules loads /etc/imprint/modules (module paths relative to
// /lib/modules/VERSION, dependencies first) with finit_module.
func loadModules() error {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return err
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]))
	f, err := os.Open("/etc/imprint/modules")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if err := loadModule(filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("load module %s: %w", p, err)
		}
	}
	return sc.Err()
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(path, ".xz") || strings.HasSuffix(path, ".zst") || strings.HasSuffix(path, ".gz") {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), "", flags); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}
