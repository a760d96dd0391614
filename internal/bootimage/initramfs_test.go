package bootimage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/testenv"
)

// fakeModules writes a module tree whose .ko files hold their own names.
func fakeModules(t *testing.T) string {
	t.Helper()
	dir := writeModTree(t, syntheticDep, syntheticBuiltin)
	for _, line := range strings.Split(syntheticDep, "\n") {
		mod, _, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		p := filepath.Join(dir, mod)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("module "+mod), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const testFP = "AB:CD:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd"

func initramfsOptions(t *testing.T, agent string) bootimage.InitramfsOptions {
	t.Helper()
	modDir := fakeModules(t)
	mods, err := bootimage.ResolveModules(modDir, []string{"virtio_pci", "e1000"})
	if err != nil {
		t.Fatal(err)
	}
	return bootimage.InitramfsOptions{
		AgentPath:     agent,
		KernelVersion: "6.1.0-99-amd64",
		ModulesDir:    modDir,
		Modules:       mods,
		Tools:         []string{"mkfs.ext4", "e2fsck", "no-such-tool-imprint"},
		Files:         []string{"/etc/mke2fs.conf", "/nonexistent/imprint.conf"},
		Boot:          &bootimage.BootConfig{ServerURL: "https://imprint.example:7281", CASHA256: testFP},
	}
}

func TestBuildInitramfsContents(t *testing.T) {
	agent := buildTestInit(t)
	opts := initramfsOptions(t, agent)
	var log, out bytes.Buffer
	opts.Log = &log
	contents, err := bootimage.BuildInitramfs(context.Background(), &out, opts)
	if err != nil {
		t.Fatal(err)
	}
	m, order := readInitramfs(t, out.Bytes())

	agentBytes, _ := os.ReadFile(agent)
	if got := m["init"]; got.Mode != 0o100755 || got.Data != string(agentBytes) {
		t.Errorf("init: mode %o, %d bytes; want 100755 and the agent's %d bytes", got.Mode, len(got.Data), len(agentBytes))
	}
	if got := m["dev/console"]; got.Mode != 0o020600 || got.RDev != [2]uint32{5, 1} {
		t.Errorf("dev/console = %+v, want char device 5,1", got)
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "etc", "etc/imprint", "usr/sbin"} {
		if m[d].Mode != 0o040755 {
			t.Errorf("%s: mode %o, want directory 755", d, m[d].Mode)
		}
	}
	if m["tmp"].Mode != 0o041777 {
		t.Errorf("tmp: mode %o, want 41777", m["tmp"].Mode)
	}
	for link, target := range map[string]string{"lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin", "bin": "usr/bin"} {
		if got := m[link]; got.Mode != 0o120777 || got.Data != target {
			t.Errorf("%s = %+v, want symlink to %s", link, got, target)
		}
	}

	wantList := "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n" +
		"kernel/drivers/virtio/virtio_pci_modern_dev.ko\nkernel/drivers/virtio/virtio_pci_legacy_dev.ko\n" +
		"kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/net/ethernet/intel/e1000/e1000.ko.xz\n"
	if diff := cmp.Diff(wantList, m["etc/imprint/modules"].Data); diff != "" {
		t.Errorf("/etc/imprint/modules (-want +got):\n%s", diff)
	}
	for _, mod := range strings.Fields(wantList) {
		if got := m["usr/lib/modules/6.1.0-99-amd64/"+mod]; got.Data != "module "+mod {
			t.Errorf("module %s: content %q", mod, got.Data)
		}
	}
	if m["usr/lib/modules/6.1.0-99-amd64/kernel/net/core/failover.ko"].Mode != 0 {
		t.Error("failover.ko included though nothing wanted needs it")
	}
	if m["usr/lib/modules/6.1.0-99-amd64/modules.dep"].Data != syntheticDep ||
		m["usr/lib/modules/6.1.0-99-amd64/modules.builtin"].Data != syntheticBuiltin {
		t.Error("modules.dep or modules.builtin not copied verbatim")
	}

	var bc bootimage.BootConfig
	if err := json.Unmarshal([]byte(m["etc/imprint/boot.json"].Data), &bc); err != nil {
		t.Fatalf("boot.json: %v", err)
	}
	want := bootimage.BootConfig{ServerURL: "https://imprint.example:7281", CASHA256: "abcd00112233445566778899aabbccddeeff00112233445566778899aabbccdd"}
	if diff := cmp.Diff(want, bc); diff != "" {
		t.Errorf("boot.json (-want +got):\n%s", diff)
	}

	// Debian's mkfs.ext4 is a symlink to mke2fs: both are kept, and the
	// libraries and loader come along.
	if got := m["usr/sbin/mkfs.ext4"]; got.Mode != 0o120777 || got.Data != "/usr/sbin/mke2fs" {
		t.Errorf("usr/sbin/mkfs.ext4 = %+v, want symlink to /usr/sbin/mke2fs", got)
	}
	if m["usr/sbin/mke2fs"].Mode != 0o100755 || m["usr/sbin/e2fsck"].Mode != 0o100755 {
		t.Error("mke2fs or e2fsck missing or not executable")
	}
	for _, lib := range []string{"usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libext2fs.so.2", "usr/lib64/ld-linux-x86-64.so.2"} {
		if _, ok := m[lib]; !ok {
			t.Errorf("%s missing; libs: %v", lib, contents.Libs)
		}
	}
	if _, ok := m["etc/mke2fs.conf"]; !ok {
		t.Error("etc/mke2fs.conf missing")
	}
	if diff := cmp.Diff([]string{"no-such-tool-imprint", "/nonexistent/imprint.conf"}, contents.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if !strings.Contains(log.String(), "warning: tool no-such-tool-imprint skipped") {
		t.Errorf("log lacks the skipped-tool warning:\n%s", log.String())
	}

	// Parents come before children and the order is sorted.
	seen := map[string]bool{}
	for i, name := range order {
		if d := filepath.Dir(name); d != "." && !seen[d] {
			t.Errorf("%s comes before its directory %s", name, d)
		}
		if i > 0 && order[i-1] >= name {
			t.Errorf("entries out of order: %s then %s", order[i-1], name)
		}
		seen[name] = true
	}
}

func TestBuildInitramfsDeterministic(t *testing.T) {
	opts := initramfsOptions(t, buildTestInit(t))
	var a, b bytes.Buffer
	if _, err := bootimage.BuildInitramfs(context.Background(), &a, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := bootimage.BuildInitramfs(context.Background(), &b, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two builds from the same inputs differ")
	}
	// And the output does depend on the inputs.
	opts.Boot.ServerURL = "https://other.example:7281"
	var c bytes.Buffer
	if _, err := bootimage.BuildInitramfs(context.Background(), &c, opts); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("a different server URL gave the same bytes")
	}
}

func TestBuildInitramfsRejects(t *testing.T) {
	agent := buildTestInit(t)
	tests := map[string]struct {
		edit    func(o *bootimage.InitramfsOptions)
		wantErr string
	}{
		"dynamic agent":     {func(o *bootimage.InitramfsOptions) { o.AgentPath = "/bin/ls" }, "dynamically linked"},
		"no agent":          {func(o *bootimage.InitramfsOptions) { o.AgentPath = "" }, "no agent binary"},
		"plain http server": {func(o *bootimage.InitramfsOptions) { o.Boot.ServerURL = "http://x:7281" }, "want an https URL"},
		"short fingerprint": {func(o *bootimage.InitramfsOptions) { o.Boot.CASHA256 = "abcd" }, "64 hex digits"},
		"no kernel version": {func(o *bootimage.InitramfsOptions) { o.KernelVersion = "" }, "need a kernel version"},
		"module escapes":    {func(o *bootimage.InitramfsOptions) { o.Modules = []string{"../x.ko"} }, "not a module path"},
		"module missing":    {func(o *bootimage.InitramfsOptions) { o.Modules = []string{"kernel/nope.ko"} }, "nope.ko"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			opts := initramfsOptions(t, agent)
			tc.edit(&opts)
			var out bytes.Buffer
			_, err := bootimage.BuildInitramfs(context.Background(), &out, opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestInitramfsToolsRunInChroot unpacks the initramfs with GNU cpio and runs
// the copied mkfs.ext4 and e2fsck inside it with chroot: proof that the
// loader, every library and the symlinks are there and resolve without the
// host's /etc/ld.so.cache.
func TestInitramfsToolsRunInChroot(t *testing.T) {
	testenv.Root(t, "to chroot")
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatal("cpio not installed (apt-get install cpio)")
	}
	opts := initramfsOptions(t, buildTestInit(t))
	var out bytes.Buffer
	if _, err := bootimage.BuildInitramfs(context.Background(), &out, opts); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	gz := filepath.Join(t.TempDir(), "initrd.img")
	os.WriteFile(gz, out.Bytes(), 0o644)
	sh := exec.Command("sh", "-c", "gzip -dc "+gz+" | cpio -i -d --quiet -D "+root+" -f dev/console")
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("unpack: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/ld.so.cache")); err == nil {
		t.Fatal("ld.so.cache in the image; the test would not prove the search path")
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("chroot", append([]string{root}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin"}
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("chroot %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	run("/sbin/mkfs.ext4", "-q", "-F", "/tmp/fs.img", "4M")
	if got := run("e2fsck", "-fn", "/tmp/fs.img"); !strings.Contains(got, "clean") && !strings.Contains(got, "files") {
		t.Errorf("e2fsck output: %s", got)
	}
}
