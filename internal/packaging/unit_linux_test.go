package packaging_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// unit is a systemd unit file: each key's values in order, across
// sections (the units here repeat no key across sections).
type unit map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			t.Fatalf("%s: continued lines are not read here: %q", path, line)
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		u[k] = append(u[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one is key's single value; the command lines here use no quoting,
// specifiers or variables, which this test would otherwise read wrong.
func (u unit) one(t *testing.T, key string) string {
	t.Helper()
	if len(u[key]) != 1 {
		t.Fatalf("unit has %d %s= lines, want 1", len(u[key]), key)
	}
	v := u[key][0]
	if strings.ContainsAny(v, `"'%$\`) {
		t.Fatalf("%s=%s: quotes, specifiers and variables are not read here", key, v)
	}
	return v
}

// checkUnits checks the two units installed in root: both pass
// systemd-analyze verify (which needs their ExecStart to exist) and
// score as well hardened by systemd-analyze security; they hold the
// settings the package promises; and imprint-pxe.service is
// imprint.service with --pxe and CAP_NET_BIND_SERVICE, nothing else.
func checkUnits(t *testing.T, root *scratchRoot, tmp string) {
	t.Helper()
	// systemd-analyze --root wants the units a service depends on by
	// default (sysinit.target, ...): the host's, beside ours and the
	// binary the units start.
	v := filepath.Join(tmp, "verify")
	unitDir := filepath.Join(v, "usr/lib/systemd/system")
	if err := os.MkdirAll(filepath.Join(v, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "", nil, "cp", "-a", "/usr/lib/systemd/system/.", unitDir)
	exe, err := filepath.EvalSymlinks(root.path("/usr/bin/imprint"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Link(exe, filepath.Join(v, "usr/bin/imprint")); err != nil {
		t.Fatal(err)
	}
	units := []string{"imprint.service", "imprint-pxe.service"}
	for _, name := range units {
		b, err := os.ReadFile(root.path("/usr/lib/systemd/system/" + name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(unitDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// verify exits 0 on warnings (an unknown key, say): any output fails.
	if out := runAll(t, "systemd-analyze", "verify", "--man=no", "--root="+v, "imprint.service", "imprint-pxe.service"); out != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
	exposure := regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+)`)
	for _, name := range units {
		out := runAll(t, "systemd-analyze", "security", "--offline=yes", "--root="+v, name)
		m := exposure.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: no exposure level in:\n%s", name, out)
		}
		// 9.6 is a unit with no hardening, 2.0 the edge of "OK".
		t.Logf("systemd-analyze security: %s exposure %s", name, m[2])
		if level, err := strconv.ParseFloat(m[2], 64); err != nil || level > 2.0 {
			t.Errorf("systemd-analyze security %s: exposure %s, want 2.0 or less:\n%s", name, m[2], out)
		}
	}

	plain := readUnit(t, filepath.Join(unitDir, "imprint.service"))
	pxe := readUnit(t, filepath.Join(unitDir, "imprint-pxe.service"))
	for key, want := range map[string]string{
		"User": "imprint", "Group": "imprint", "StateDirectory": "imprint", "ProtectSystem": "strict",
		"NoNewPrivileges": "yes", "Restart": "on-failure", "PrivateTmp": "yes", "ProtectHome": "yes",
		"CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	} {
		if got := plain.one(t, key); got != want {
			t.Errorf("imprint.service: %s=%s, want %s", key, got, want)
		}
	}
	if strings.Contains(plain.one(t, "ExecStart"), "--pxe") {
		t.Errorf("imprint.service starts the server with --pxe: %s", plain.one(t, "ExecStart"))
	}
	want := map[string]string{
		"ExecStart":             plain.one(t, "ExecStart") + " --pxe",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"Conflicts":             "imprint.service",
		"Description":           plain.one(t, "Description") + " with proxyDHCP and TFTP (--pxe)",
	}
	keys := map[string]bool{}
	for k := range plain {
		keys[k] = true
	}
	for k := range pxe {
		keys[k] = true
	}
	for k := range keys {
		w, changed := want[k]
		switch {
		case changed && (len(pxe[k]) != 1 || pxe[k][0] != w):
			t.Errorf("imprint-pxe.service: %s=%q, want %q", k, pxe[k], w)
		case !changed && !slices.Equal(pxe[k], plain[k]):
			t.Errorf("imprint-pxe.service: %s=%q, imprint.service has %q: they must differ only in --pxe and its capability", k, pxe[k], plain[k])
		}
	}
}

// runAll runs name and returns its standard output and error together.
func runAll(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := execCombined(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}
