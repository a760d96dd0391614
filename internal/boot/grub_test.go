package boot_test

import (
	"context"
	"errors"
	"github.com/imprint-osd/imprint/internal/golden"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/boot"
)

// checkGrub applies checks that hold for every GRUB config we serve: no
// unbalanced single quotes (each line's count is even) and every
// "set default=" names an entry that exists.
func checkGrub(t *testing.T, cfg string) {
	t.Helper()
	for i, line := range strings.Split(cfg, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.Count(line, "'")%2 != 0 {
			t.Errorf("line %d has unbalanced quotes: %q", i+1, line)
		}
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`--id (\S+) \{`).FindAllStringSubmatch(cfg, -1) {
		ids[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^set default=(\S+)$`).FindAllStringSubmatch(cfg, -1) {
		if !ids[m[1]] {
			t.Errorf("set default=%s names no menu entry (have %v)", m[1], ids)
		}
	}
}

// TestGrubGolden: the GRUB configs carry the same decisions as the iPXE
// scripts of TestScriptsGolden (menu, timeout, default entry, per-machine
// override, kernel arguments) for the signed chain.
func TestGrubGolden(t *testing.T) {
	const q = "/grub/machine.cfg?mac=52:54:00:AB:cd:01&uuid=4C4C4544-0042-3010-8052-B4C04F4E4432&arch=x86_64&platform=efi"
	noMenu := testConfig()
	noMenu.Menu = false
	args := testConfig()
	args.KernelArgs = "ip=dhcp  imprint.debug=1 loglevel=7"
	forever := testConfig()
	forever.MenuTimeout = 0
	odd := testConfig()
	odd.MenuTimeout = 2500e6 // 2.5 s: GRUB counts whole seconds, rounded up
	shell := testConfig()
	shell.Menu, shell.DefaultEntry = false, boot.EntryShell
	deployed := machines{"52-54-00-ab-cd-01": {DefaultEntry: boot.EntryLocal, KernelArgs: "imprint.trace=1"}}

	tests := []struct {
		golden string
		cfg    boot.Config
		ms     boot.MachineLookup
		target string
	}{
		{"grub-bootstrap.cfg", testConfig(), nil, "/grub/grub.cfg"},
		{"grub-menu.cfg", testConfig(), nil, q},
		{"grub-menu-no-timeout.cfg", forever, nil, q},
		{"grub-menu-timeout-rounded.cfg", odd, nil, q},
		{"grub-nomenu.cfg", noMenu, nil, q},
		{"grub-nomenu-shell.cfg", shell, nil, q},
		{"grub-override.cfg", testConfig(), deployed, q},
		{"grub-override-nomenu.cfg", noMenu, deployed, q},
		{"grub-kernelargs.cfg", args, nil, q},
		{"grub-error-bad-mac.cfg", testConfig(), nil, "/grub/machine.cfg?mac=nonsense&arch=x86_64&platform=efi"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			w := get(t, newHandler(t, tt.cfg, nil, tt.ms), tt.target)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, body %q", w.Code, w.Body)
			}
			checkGrub(t, w.Body.String())
			golden.Check(t, tt.golden, []byte(w.Body.String()))
		})
	}
}

// TestGrubInjection sends values that would add GRUB commands if they
// reached the config (quotes, newlines, ;, $ expansions) and checks that
// the answer is the fixed error config with an inert message.
func TestGrubInjection(t *testing.T) {
	payloads := map[string]string{
		"mac quote":     "mac=aa'%0Ainsmod%20evil'&arch=x86_64&platform=efi",
		"mac semicolon": "mac=52-54-00-ab-cd-ef;reboot&arch=x86_64&platform=efi",
		"mac dollar":    "mac=${prefix}&arch=x86_64&platform=efi",
		"uuid newline":  "mac=52-54-00-ab-cd-ef&uuid=x%0Areboot&arch=x86_64&platform=efi",
		"arch":          "mac=52-54-00-ab-cd-ef&arch=x86_64'&platform=efi",
		"platform":      "mac=52-54-00-ab-cd-ef&arch=x86_64&platform=pc",
	}
	h := newHandler(t, testConfig(), nil, nil)
	want, err := os.ReadFile(filepath.Join("testdata", "grub-error-bad-mac.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for name, query := range payloads {
		t.Run(name, func(t *testing.T) {
			got := get(t, h, "/grub/machine.cfg?"+query).Body.String()
			checkGrub(t, got)
			wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
			if len(gl) != len(wl) {
				t.Fatalf("error config has %d lines, want %d:\n%s", len(gl), len(wl), got)
			}
			msg, ok := strings.CutPrefix(gl[1], "echo 'Imprint: parameter ")
			if !ok || !strings.HasSuffix(msg, "'") {
				t.Errorf("message line %q is not the quoted parameter error", gl[1])
			}
			if i := strings.IndexAny(strings.TrimSuffix(msg, "'"), "${}\"'\\&|;#\r\t"); i >= 0 {
				t.Errorf("message line %q has %q", gl[1], msg[i])
			}
			gl[1], wl[1] = "", ""
			if diff := cmp.Diff(wl, gl); diff != "" {
				t.Errorf("error config differs from the fixed one (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGrubOverrideInjection: a stored override with unsafe kernel
// arguments is refused, not rendered into the GRUB config.
func TestGrubOverrideInjection(t *testing.T) {
	h := newHandler(t, testConfig(), nil, machines{"52-54-00-ab-cd-ef": {KernelArgs: "quiet' ; reboot '"}})
	got := get(t, h, "/grub/machine.cfg?mac=52-54-00-ab-cd-ef&arch=x86_64&platform=efi").Body.String()
	checkGrub(t, got)
	if !strings.Contains(got, "echo 'Imprint: the kernel arguments set for 52-54-00-ab-cd-ef are invalid") || strings.Contains(got, "reboot") {
		t.Errorf("override not refused:\n%s", got)
	}
}

// TestTFTPOpen: the TFTP names of the signed chain map to the boot image
// directory and to the same GRUB configs the boot port serves.
func TestTFTPOpen(t *testing.T) {
	root := t.TempDir()
	files := bootTree(t, root)
	for name, data := range map[string]string{boot.ShimFile: "shim", boot.GrubFile: "grub"} {
		if err := os.WriteFile(filepath.Join(root, "x86_64", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deployed := machines{"52-54-00-ab-cd-01": {DefaultEntry: boot.EntryLocal}}
	h := newHandler(t, testConfig(), boot.DirFileSource(root), deployed)
	const query = "mac=52:54:00:ab:cd:01&uuid=&arch=x86_64&platform=efi"
	tests := []struct {
		name string
		want string
	}{
		{"bootx64.efi", "shim"},
		{"/grubx64.efi", "grub"},
		{"/grub/grub.cfg", get(t, h, "/grub/grub.cfg").Body.String()},
		{"/grub/machine.cfg?" + query, get(t, h, "/grub/machine.cfg?"+query).Body.String()},
		{"grub/machine.cfg?mac=bad", get(t, h, "/grub/machine.cfg?mac=bad").Body.String()},
		{"/images/x86_64/vmlinuz", files["x86_64/vmlinuz"]},
		{"images/arm64/initrd.img", files["arm64/initrd.img"]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, size, err := h.TFTPOpen(context.Background(), "test", tt.name)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got := readAll(t, rc)
			if int64(len(got)) != size {
				t.Errorf("size %d, read %d bytes", size, len(got))
			}
			if got != tt.want {
				t.Errorf("got %.200q, want %.200q", got, tt.want)
			}
		})
	}
	if got := get(t, h, "/grub/machine.cfg?"+query).Body.String(); !strings.Contains(got, "set default=local") {
		t.Errorf("deployed machine's config does not default to the local disk:\n%s", got)
	}
	for _, name := range []string{"ipxe.efi", "images/x86_64/../../etc/passwd", "images/x86_64/manifest.json",
		"images/x86_64/vmlinuz?x=1", "grub/other.cfg", "images/sparc/vmlinuz", "shimx64.efi", ""} {
		t.Run("refused "+name, func(t *testing.T) {
			rc, _, err := h.TFTPOpen(context.Background(), "test", name)
			if err == nil {
				rc.Close()
				t.Fatalf("TFTPOpen(%q) served a file", name)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v does not wrap fs.ErrNotExist", err)
			}
		})
	}
}
