//go:build integration

package bootimage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// TestISOBootsInQEMU boots an ISO from BuildISO from a virtual CD drive with
// SeaBIOS and with OVMF (TCG, about 15 s each). The test init prints the
// kernel command line grub passed.
func TestISOBootsInQEMU(t *testing.T) {
	needQEMU(t)
	img := buildRealImage(t)
	iso := filepath.Join(t.TempDir(), "imprint.iso")
	if err := bootimage.BuildISO(context.Background(), iso, img, "https://imprint.example:7281", testFP); err != nil {
		t.Fatal(err)
	}
	t.Run("iso boots with BIOS", func(t *testing.T) {
		out := runQEMU(t, "-cdrom", iso, "-boot", "d", "-nic", "none")
		wantConsole(t, out, "TESTINIT-START", "imprint.server=https://imprint.example:7281 imprint.ca=abcd0011", "console=tty0", "TESTINIT-END")
	})
	t.Run("iso boots with UEFI", func(t *testing.T) {
		const code, vars = "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"
		if _, err := os.Stat(code); err != nil {
			testenv.Missing(t, "OVMF firmware is not there: apt-get install ovmf: %v", err)
		}
		v := filepath.Join(t.TempDir(), "vars.fd")
		b, err := os.ReadFile(vars)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(v, b, 0o644)
		out := runQEMU(t, "-machine", "q35",
			"-drive", "if=pflash,format=raw,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,file="+v,
			"-drive", "file="+iso+",media=cdrom,format=raw", "-nic", "none")
		wantConsole(t, out, "TESTINIT-START", "imprint.server=https://imprint.example:7281", "TESTINIT-END")
	})

}
