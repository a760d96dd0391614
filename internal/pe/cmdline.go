package pe

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strings"
)

// ErrNotLinux is returned by the kernel-facing functions on other systems.
var ErrNotLinux = errors.New("only on Linux: the boot image runs a Linux kernel")

// Paths inside the boot image.
const (
	CmdlinePath    = "/proc/cmdline"
	BootJSONPath   = "/etc/imprint/boot.json"
	ModuleListPath = "/etc/imprint/modules"
)

// Boot is what the boot image learns from the kernel command line (and, on
// the ISO, from /etc/imprint/boot.json).
type Boot struct {
	// ServerURL is the https base URL of the Imprint server (imprint.server).
	ServerURL string
	// CASHA256 is the SHA-256 of the server's CA certificate in lowercase
	// hex without colons (imprint.ca).
	CASHA256 string
	// MAC is the address of the interface the machine booted from
	// (imprint.mac), nil when not given.
	MAC net.HardwareAddr
	// TSID is the task sequence to run without asking (imprint.ts).
	TSID string
	// Vars are the imprint.var.NAME=VALUE pairs; a repeated NAME keeps the
	// last value.
	Vars map[string]string
	// Debug is set by imprint.debug (or imprint.debug=1/true/yes).
	Debug bool
	// IP is imprint.ip; the zero value means DHCP.
	IP IPConfig
	// Unknown lists imprint.* parameters this agent does not understand,
	// for logging: a newer server may send more.
	Unknown []string
}

// IPConfig is how to configure the network: DHCP or a static address.
type IPConfig struct {
	// Static is false for DHCP.
	Static bool
	// Addr is the static address with its prefix length.
	Addr netip.Prefix
	// Gateway is the static default gateway; invalid when none.
	Gateway netip.Addr
	// DNS are static name servers.
	DNS []netip.Addr
}

// bootFile is /etc/imprint/boot.json, written by `imprint bootimage iso`.
type bootFile struct {
	ServerURL string `json:"serverURL"`
	CASHA256  string `json:"caSHA256"`
}

// ParseCmdline parses a kernel command line (the text of /proc/cmdline) and
// requires the server URL and CA fingerprint on it.
func ParseCmdline(s string) (Boot, error) {
	return LoadBoot(s, nil)
}

// LoadBoot parses the kernel command line and fills the server URL and the
// CA fingerprint from bootJSON (the contents of /etc/imprint/boot.json; nil
// when the file does not exist) where the command line lacks them. The
// command line wins where both have a value.
func LoadBoot(cmdline string, bootJSON []byte) (Boot, error) {
	b, err := parseCmdline(cmdline)
	if err != nil {
		return Boot{}, err
	}
	if len(bootJSON) > 0 && (b.ServerURL == "" || b.CASHA256 == "") {
		var f bootFile
		if err := json.Unmarshal(bootJSON, &f); err != nil {
			return Boot{}, fmt.Errorf("boot.json: %w", err)
		}
		if b.ServerURL == "" && f.ServerURL != "" {
			if b.ServerURL, err = parseServerURL(f.ServerURL); err != nil {
				return Boot{}, fmt.Errorf("boot.json serverURL: %w", err)
			}
		}
		if b.CASHA256 == "" && f.CASHA256 != "" {
			if b.CASHA256, err = parseFingerprint(f.CASHA256); err != nil {
				return Boot{}, fmt.Errorf("boot.json caSHA256: %w", err)
			}
		}
	}
	if b.ServerURL == "" {
		return Boot{}, errors.New("no server: the kernel command line has no imprint.server=https://HOST:PORT and there is no serverURL in " + BootJSONPath)
	}
	if b.CASHA256 == "" {
		return Boot{}, errors.New("no CA fingerprint: the kernel command line has no imprint.ca=SHA256HEX and there is no caSHA256 in " + BootJSONPath)
	}
	return b, nil
}

// parseCmdline parses without checking that required values are present.
func parseCmdline(s string) (Boot, error) {
	var b Boot
	for _, arg := range splitCmdline(s) {
		key, val, hasVal := strings.Cut(arg, "=")
		if !strings.HasPrefix(key, "imprint.") {
			continue
		}
		need := func() error {
			if !hasVal || val == "" {
				return fmt.Errorf("%s needs a value (%s=…)", key, key)
			}
			return nil
		}
		var err error
		switch {
		case key == "imprint.server":
			if err = need(); err == nil {
				b.ServerURL, err = parseServerURL(val)
			}
		case key == "imprint.ca":
			if err = need(); err == nil {
				b.CASHA256, err = parseFingerprint(val)
			}
		case key == "imprint.mac":
			if err = need(); err == nil {
				b.MAC, err = parseMAC(val)
			}
		case key == "imprint.ts":
			if err = need(); err == nil {
				b.TSID = val
			}
		case key == "imprint.debug":
			b.Debug, err = parseFlag(val, hasVal)
		case key == "imprint.ip":
			if err = need(); err == nil {
				b.IP, err = ParseIPConfig(val)
			}
		case strings.HasPrefix(key, "imprint.var."):
			name := strings.TrimPrefix(key, "imprint.var.")
			switch {
			case name == "":
				err = errors.New("imprint.var. needs a name (imprint.var.NAME=VALUE)")
			case !hasVal:
				err = fmt.Errorf("%s needs =VALUE (an empty value is written %s=)", key, key)
			default:
				if b.Vars == nil {
					b.Vars = map[string]string{}
				}
				b.Vars[name] = val
			}
		default:
			b.Unknown = append(b.Unknown, key)
		}
		if err != nil {
			return Boot{}, fmt.Errorf("kernel command line: %w", err)
		}
	}
	sort.Strings(b.Unknown)
	return b, nil
}

// splitCmdline splits like the kernel's next_arg: spaces separate
// arguments except inside double quotes, and the quotes are removed.
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, inArg := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			inArg = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out
}

func parseServerURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", s, err)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("server URL %q must start with https:// (the API is served over TLS only)", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q has no host", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// parseFingerprint accepts 64 hex digits, colons allowed, any case.
func parseFingerprint(s string) (string, error) {
	h := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return "", fmt.Errorf("CA fingerprint %q is not a SHA-256 in hex (64 digits, colons allowed)", s)
	}
	return h, nil
}

func parseMAC(s string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, fmt.Errorf("imprint.mac %q is not an Ethernet address like 52-54-00-ab-cd-ef", s)
	}
	return m, nil
}

func parseFlag(val string, hasVal bool) (bool, error) {
	if !hasVal {
		return true, nil
	}
	switch strings.ToLower(val) {
	case "", "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("imprint.debug=%q: want 1 or 0", val)
}

// ParseIPConfig parses the value of imprint.ip: "dhcp", or
// "static:ADDR/PREFIX[,GATEWAY[,DNS...]]" (an empty GATEWAY means none).
func ParseIPConfig(s string) (IPConfig, error) {
	if strings.EqualFold(s, "dhcp") {
		return IPConfig{}, nil
	}
	rest, ok := strings.CutPrefix(s, "static:")
	if !ok {
		return IPConfig{}, fmt.Errorf("imprint.ip=%q: want dhcp or static:ADDR/PREFIX,GATEWAY", s)
	}
	parts := strings.Split(rest, ",")
	c := IPConfig{Static: true}
	var err error
	if c.Addr, err = netip.ParsePrefix(parts[0]); err != nil || !c.Addr.Addr().Is4() {
		return IPConfig{}, fmt.Errorf("imprint.ip=%q: address %q is not an IPv4 ADDR/PREFIX like 10.0.2.15/24", s, parts[0])
	}
	if c.Addr.Bits() == 0 || c.Addr.Bits() == 32 {
		return IPConfig{}, fmt.Errorf("imprint.ip=%q: prefix length %d leaves no network", s, c.Addr.Bits())
	}
	if len(parts) > 1 && parts[1] != "" {
		if c.Gateway, err = netip.ParseAddr(parts[1]); err != nil || !c.Gateway.Is4() {
			return IPConfig{}, fmt.Errorf("imprint.ip=%q: gateway %q is not an IPv4 address", s, parts[1])
		}
	}
	for _, d := range parts[min(2, len(parts)):] {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return IPConfig{}, fmt.Errorf("imprint.ip=%q: name server %q is not an IP address", s, d)
		}
		c.DNS = append(c.DNS, a)
	}
	return c, nil
}

// String renders the config in imprint.ip syntax.
func (c IPConfig) String() string {
	if !c.Static {
		return "dhcp"
	}
	var sb strings.Builder
	sb.WriteString("static:" + c.Addr.String() + ",")
	if c.Gateway.IsValid() {
		sb.WriteString(c.Gateway.String())
	}
	for _, d := range c.DNS {
		sb.WriteString("," + d.String())
	}
	return sb.String()
}
