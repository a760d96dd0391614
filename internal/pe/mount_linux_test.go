package pe

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// mountsBelow lists "mountpoint fstype" for mounts below root, from
// /proc/self/mountinfo.
func mountsBelow(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || !strings.HasPrefix(f[4], root+"/") {
			continue
		}
		sep := 6
		for f[sep] != "-" {
			sep++
		}
		out = append(out, strings.TrimPrefix(f[4], root)+" "+f[sep+1])
	}
	sort.Strings(out)
	return out
}

func TestMountEarlyAt(t *testing.T) {
	testenv.Root(t, "to mount")
	root := t.TempDir()
	t.Cleanup(func() {
		m := mountsBelow(t, root)
		for i := len(m) - 1; i >= 0; i-- {
			_ = unix.Unmount(root+strings.Fields(m[i])[0], unix.MNT_DETACH)
		}
	})
	if err := mountEarlyAt(root); err != nil {
		t.Fatal(err)
	}
	want := []string{"/dev devtmpfs", "/dev/pts devpts", "/proc proc", "/run tmpfs", "/sys sysfs", "/tmp tmpfs"}
	if _, err := os.Stat(root + "/sys/firmware/efi"); err == nil {
		want = append(want, "/sys/firmware/efi/efivars efivarfs")
		sort.Strings(want)
	}
	if d := cmp.Diff(want, mountsBelow(t, root)); d != "" {
		t.Fatalf("mounts (-want +got):\n%s", d)
	}
	if _, err := os.Stat(root + "/dev/null"); err != nil {
		t.Errorf("devtmpfs has no null device: %v", err)
	}
	// Idempotent: nothing is mounted twice.
	if err := mountEarlyAt(root); err != nil {
		t.Fatalf("second call: %v", err)
	}
	if d := cmp.Diff(want, mountsBelow(t, root)); d != "" {
		t.Errorf("mounts after a second call (-want +got):\n%s", d)
	}
}
