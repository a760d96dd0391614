package bootimage_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/testenv"
)

func TestFetchKernelAndCache(t *testing.T) {
	k := fetchKernel(t)
	if !strings.HasPrefix(k.Package, "linux-image-") || k.PackageVersion == "" || k.Version == "" {
		t.Errorf("kernel = %+v", k)
	}
	for _, p := range []string{k.Vmlinuz, filepath.Join(k.ModulesDir, "modules.dep"), filepath.Join(k.ModulesDir, "modules.builtin")} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	// The second call is served from the cache.
	var log bytes.Buffer
	k2, err := bootimage.FetchKernel(context.Background(), testCacheDir(t), &log)
	if err != nil {
		t.Fatal(err)
	}
	if *k2 != *k || !strings.Contains(log.String(), "from cache") {
		t.Errorf("second fetch: %+v, log %q; want the same kernel from cache", k2, log.String())
	}
	// And it can be named directly, as an admin would.
	k3, err := bootimage.KernelFromDir(k.Vmlinuz, k.ModulesDir)
	if err != nil {
		t.Fatal(err)
	}
	if k3.Version != k.Version {
		t.Errorf("KernelFromDir version %q, want %q", k3.Version, k.Version)
	}
}

func TestKernelFromDirRejects(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "vmlinuz")
	os.WriteFile(notKernel, bytes.Repeat([]byte{0}, 4096), 0o644)
	if _, err := bootimage.KernelFromDir(notKernel, dir); err == nil || !strings.Contains(err.Error(), "not a Linux x86 kernel image") {
		t.Errorf("zero file: got %v", err)
	}
	kernel := filepath.Join(dir, "bz")
	b := make([]byte, 4096)
	copy(b[0x202:], "HdrS")
	os.WriteFile(kernel, b, 0o644)
	if _, err := bootimage.KernelFromDir(kernel, filepath.Join(dir, "modules")); err == nil || !strings.Contains(err.Error(), "ending in the kernel version") {
		t.Errorf("bad modules dir name: got %v", err)
	}
	mods := filepath.Join(dir, "6.1.0-1-amd64")
	os.Mkdir(mods, 0o755)
	if _, err := bootimage.KernelFromDir(kernel, mods); err == nil || !strings.Contains(err.Error(), "depmod") {
		t.Errorf("no modules.dep: got %v", err)
	}
	os.WriteFile(filepath.Join(mods, "modules.dep"), nil, 0o644)
	k, err := bootimage.KernelFromDir(kernel, mods)
	if err != nil || k.Version != "6.1.0-1-amd64" {
		t.Errorf("good tree: %+v, %v", k, err)
	}
}

// buildRealImage builds a boot image from Debian's kernel with the test
// init as agent.
func buildRealImage(t *testing.T) *bootimage.Image {
	t.Helper()
	k := fetchKernel(t)
	var log bytes.Buffer
	sc, err := bootimage.FetchSignedChain(context.Background(), testCacheDir(t), &log)
	if err != nil {
		t.Fatalf("FetchSignedChain: %v\n%s", err, log.String())
	}
	img, err := bootimage.Build(context.Background(), bootimage.BuildOptions{
		OutDir:    filepath.Join(t.TempDir(), "img"),
		Kernel:    k,
		Signed:    sc,
		AgentPath: buildTestInit(t),
		Modules:   append([]string{"no_such_module_imprint"}, bootimage.DefaultModules...),
		Log:       &log,
	})
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "no module no_such_module_imprint; skipped") {
		t.Errorf("no warning for the missing module:\n%s", log.String())
	}
	return img
}

// TestRealImage builds one boot image from Debian's kernel and checks it
// several ways; the image is shared because building it under -race takes
// about 20 s.
func TestRealImage(t *testing.T) {
	img := buildRealImage(t)

	t.Run("manifest", func(t *testing.T) {
		loaded, err := bootimage.LoadImage(img.Dir)
		if err != nil {
			t.Fatal(err)
		}
		man := loaded.Manifest
		for _, want := range []string{"virtio_net", "virtio_pci", "e1000", "ext4", "crc32c_generic", "nvme"} {
			found := false
			for _, m := range man.Modules {
				found = found || bootimage.ModuleName(m) == want
			}
			if !found {
				t.Errorf("module %s not in manifest %v", want, man.Modules)
			}
		}
		if len(man.Tools) == 0 || man.AgentSHA256 == "" || len(man.SHA256) != 5 || !man.KernelSigned || man.SignedChain == nil {
			t.Errorf("manifest incomplete: %+v", man)
		}
	})

	// The test init loads every module in /etc/imprint/modules and runs
	// mkfs.ext4 from the image.
	t.Run("direct kernel boot in QEMU", func(t *testing.T) {
		needQEMU(t)
		out := runQEMU(t, "-kernel", img.Vmlinuz(), "-initrd", img.Initrd(),
			"-append", "console=ttyS0 panic=-1 imprint.server=https://10.0.2.2:7281",
			"-nic", "user,model=virtio-net-pci")
		wantConsole(t, out, "TESTINIT-START", "imprint.server=https://10.0.2.2:7281", "MODULES loaded=", "failed=0", "TOOL-OK mke2fs", "NIC eth0", "TESTINIT-END")
	})

	iso := filepath.Join(t.TempDir(), "imprint.iso")
	if err := bootimage.BuildISO(context.Background(), iso, img, "https://imprint.example:7281", testFP); err != nil {
		t.Fatal(err)
	}
	t.Run("iso", func(t *testing.T) { checkISO(t, iso) })
	t.Run("tampered initrd refused", func(t *testing.T) {
		f, _ := os.OpenFile(img.Initrd(), os.O_WRONLY|os.O_APPEND, 0)
		f.Write([]byte("x"))
		f.Close()
		if _, err := bootimage.LoadImage(img.Dir); err == nil || !strings.Contains(err.Error(), "initrd.img has SHA-256") {
			t.Errorf("tampered initrd: got %v", err)
		}
	})
}

func TestBuildRefusesKernelWithoutEssentials(t *testing.T) {
	modDir := filepath.Join(t.TempDir(), "6.1.0-1-amd64")
	os.Mkdir(modDir, 0o755)
	os.WriteFile(filepath.Join(modDir, "modules.dep"), []byte("kernel/e1000.ko:\n"), 0o644)
	_, err := bootimage.Build(context.Background(), bootimage.BuildOptions{
		OutDir:    t.TempDir(),
		Kernel:    &bootimage.Kernel{Version: "6.1.0-1-amd64", ModulesDir: modDir, Vmlinuz: "/dev/null"},
		AgentPath: "/bin/ls",
	})
	if err == nil || !strings.Contains(err.Error(), "lacks essential modules: virtio_pci, virtio_net, virtio_blk") {
		t.Errorf("got %v", err)
	}
}

func needQEMU(t *testing.T) {
	t.Helper()
	testenv.LookPath(t, "qemu-system-x86_64")
}

func wantConsole(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("console lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", out)
	}
}

// runQEMU runs a headless QEMU (TCG) with the given extra arguments until
// the guest powers off and returns the serial console output.
func runQEMU(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	base := []string{"-nographic", "-m", "512", "-cpu", "max", "-serial", "stdio", "-monitor", "none", "-no-reboot"}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", append(base, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("qemu: %v\n%s", err, out.String())
	}
	return out.String()
}
