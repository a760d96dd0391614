package winacl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/imprint-osd/imprint/internal/testenv"
	"github.com/imprint-osd/imprint/internal/winacl"
)

// TestSetTreeOnNTFS sets the descriptors through ntfs-3g on a volume made
// by mkntfs and reads them back with ntfssecaudit from the unmounted
// volume's $Secure, an independent reader.
func TestSetTreeOnNTFS(t *testing.T) {
	testenv.Root(t, "to mount NTFS with ntfs-3g")
	for _, tool := range []string{"mkntfs", "ntfs-3g", "ntfssecaudit"} {
		testenv.LookPath(t, tool)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "ntfs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkntfs", "-F", "-f", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkntfs: %v\n%s", err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ntfs-3g", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("ntfs-3g: %v\n%s", err, out)
	}
	mounted := true
	umount := func() {
		if mounted {
			if err := unix.Unmount(mnt, 0); err != nil {
				t.Errorf("unmount: %v", err)
			}
			mounted = false
		}
	}
	defer umount()
	state := filepath.Join(mnt, "ProgramData", "Imprint", "state")
	for _, p := range []string{"logs", "content/x"} {
		if err := os.MkdirAll(filepath.Join(state, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"agent.json", "logs/imprint-agent.log"} {
		if err := os.WriteFile(filepath.Join(state, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := winacl.SetTree(state); err != nil {
		t.Fatal(err)
	}
	got, err := winacl.Get(filepath.Join(state, "agent.json"))
	if err != nil || string(got) != string(winacl.Private(false)) {
		t.Errorf("read back through the xattr: % x, %v", got, err)
	}
	umount()

	sids := regexp.MustCompile(`(?m)^\s+dec (S-[0-9-]+)$`)
	for _, tt := range []struct {
		path  string
		dir   bool
		flags string
	}{
		{"/ProgramData/Imprint/state", true, "0x3"},
		{"/ProgramData/Imprint/state/logs", true, "0x3"},
		{"/ProgramData/Imprint/state/content/x", true, "0x3"},
		{"/ProgramData/Imprint/state/agent.json", false, "0x0"},
		{"/ProgramData/Imprint/state/logs/imprint-agent.log", false, "0x0"},
	} {
		out, err := exec.Command("ntfssecaudit", "-vv", img, tt.path).CombinedOutput()
		if err != nil {
			t.Fatalf("ntfssecaudit %s: %v\n%s", tt.path, err, out)
		}
		s := string(out)
		for _, want := range []string{"DACL present", "DACL cannot be modified by inheritable ACEs",
			"O:dec S-1-5-18", "G:dec S-1-5-18", "ACE cnt  2", "Acc rgts 0x1f01ff", "flags    " + tt.flags + "\n"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s: ntfssecaudit does not say %q:\n%s", tt.path, want, s)
			}
		}
		var aceSIDs []string
		for _, m := range sids.FindAllStringSubmatch(s, -1) {
			aceSIDs = append(aceSIDs, m[1])
		}
		if want := []string{"S-1-5-18", "S-1-5-32-544"}; !slices.Equal(aceSIDs, want) {
			t.Errorf("%s: ACEs for %v, want %v:\n%s", tt.path, aceSIDs, want, s)
		}
	}
}
