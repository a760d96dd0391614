package hosttool_test

import (
	"os"
	"testing"

	"github.com/imprint-osd/imprint/internal/hosttool"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// TestFindWithoutPATH: the boot image runs the agent with no PATH; a
// program in /usr/bin or /usr/sbin must still be found.
func TestFindWithoutPATH(t *testing.T) {
	for _, p := range []string{"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
		if _, err := os.Stat(p); err == nil {
			t.Setenv("PATH", "")
			got, err := hosttool.Find("mkfs.ext4")
			if err != nil || (got != "/usr/sbin/mkfs.ext4" && got != "/sbin/mkfs.ext4") {
				t.Fatalf("Find(mkfs.ext4) with no PATH = %q, %v", got, err)
			}
			if _, err := hosttool.Find("no-such-imprint-tool"); err == nil {
				t.Errorf("Find found a program that does not exist")
			}
			if got := hosttool.Path("no-such-imprint-tool"); got != "no-such-imprint-tool" {
				t.Errorf("Path of a missing program = %q, want the name", got)
			}
			return
		}
	}
	testenv.LookPath(t, "mkfs.ext4")
	t.Fatal("mkfs.ext4 is on PATH but in neither /usr/sbin nor /sbin")
}
