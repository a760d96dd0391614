package boot

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Boot menu entries, usable as Config.DefaultEntry and MachineBoot.DefaultEntry.
const (
	EntryDeploy = "deploy" // boot the Imprint boot image
	EntryLocal  = "local"  // boot from the local disk
	EntryShell  = "shell"  // the iPXE shell, for diagnostics
)

// DefaultIPXEDir is where Debian's ipxe package installs the iPXE binaries.
const DefaultIPXEDir = "/usr/lib/ipxe"

// Config configures the boot handler.
type Config struct {
	// PublicURL is the HTTPS API URL that agents use, e.g. https://imprint.example:7281.
	PublicURL string
	// BootURL is the boot port's own URL as machines reach it, e.g. http://10.0.2.2:7282.
	BootURL string
	// CAFingerprint is the hex SHA-256 of the CA certificate (colons allowed).
	CAFingerprint string
	// KernelArgs are extra kernel arguments for every machine.
	KernelArgs string
	// Menu shows the boot menu; without it the default entry runs at once.
	Menu bool
	// MenuTimeout is how long the menu waits before the default entry; zero waits forever.
	MenuTimeout time.Duration
	// DefaultEntry is deploy, local or shell; empty means deploy.
	DefaultEntry string
	// IPXEDir holds ipxe.efi, snponly.efi, undionly.kpxe; empty means DefaultIPXEDir.
	IPXEDir string
}

// DefaultConfig returns a Config with the menu on, a 10 s menu timeout,
// deploy as the default entry and Debian's iPXE directory. The URLs and the
// fingerprint must still be set.
func DefaultConfig() Config {
	return Config{
		Menu:         true,
		MenuTimeout:  10 * time.Second,
		DefaultEntry: EntryDeploy,
		IPXEDir:      DefaultIPXEDir,
	}
}

// normalised returns the config with defaults filled in and the fingerprint
// in lowercase hex, or an error naming the first bad field.
func (c Config) normalised() (Config, error) {
	var err error
	if c.PublicURL, err = checkURL(c.PublicURL, "https"); err != nil {
		return c, fmt.Errorf("boot config: PublicURL: %w", err)
	}
	if c.BootURL, err = checkURL(c.BootURL, "http", "https"); err != nil {
		return c, fmt.Errorf("boot config: BootURL: %w", err)
	}
	fp := strings.ToLower(strings.ReplaceAll(c.CAFingerprint, ":", ""))
	if b, derr := hex.DecodeString(fp); derr != nil || len(b) != 32 {
		return c, fmt.Errorf("boot config: CAFingerprint: want the hex SHA-256 of the CA certificate (64 hex digits), got %q", c.CAFingerprint)
	}
	c.CAFingerprint = fp
	if err := ValidateKernelArgs(c.KernelArgs); err != nil {
		return c, fmt.Errorf("boot config: KernelArgs: %w", err)
	}
	if c.MenuTimeout < 0 {
		return c, fmt.Errorf("boot config: MenuTimeout: must not be negative, got %s", c.MenuTimeout)
	}
	if c.DefaultEntry == "" {
		c.DefaultEntry = EntryDeploy
	}
	if err := checkEntry(c.DefaultEntry); err != nil {
		return c, fmt.Errorf("boot config: DefaultEntry: %w", err)
	}
	if c.IPXEDir == "" {
		c.IPXEDir = DefaultIPXEDir
	}
	return c, nil
}

// Validate reports the first invalid field of c, by name.
func (c Config) Validate() error {
	_, err := c.normalised()
	return err
}

func checkEntry(e string) error {
	switch e {
	case EntryDeploy, EntryLocal, EntryShell:
		return nil
	}
	return fmt.Errorf("want deploy, local or shell, got %q", e)
}

// checkURL accepts an absolute URL with one of the given schemes, a host, no
// user info, query or fragment, made only of characters that are inert in
// an iPXE script. The result has no trailing slash.
func checkURL(s string, schemes ...string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("required")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !urlChar(r) }); i >= 0 {
		return "", fmt.Errorf("character %q at offset %d is not allowed in %q", runeAt(s, i), i, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("parse %q: %w", s, err)
	}
	okScheme := false
	for _, sc := range schemes {
		okScheme = okScheme || u.Scheme == sc
	}
	switch {
	case !okScheme:
		return "", fmt.Errorf("scheme of %q must be %s", s, strings.Join(schemes, " or "))
	case u.Host == "":
		return "", fmt.Errorf("%q has no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "?"):
		return "", fmt.Errorf("%q must not have user info, a query or a fragment", s)
	}
	return strings.TrimRight(s, "/"), nil
}

func urlChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("-._~:/[]@%+,=", r)
}

// argChar reports whether r may appear in a kernel argument. iPXE expands
// ${...} anywhere, treats whitespace, quotes and backslashes specially and
// runs "&&", "||" as command separators, so all of those are refused.
func argChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("-._~:/[]@%+,=^!*", r)
}

// ValidateKernelArgs checks space-separated kernel arguments for characters
// that would be unsafe in an iPXE script. Allowed: letters, digits and
// - . _ ~ : / [ ] @ % + , = ^ ! *. The admin API should call it on input.
func ValidateKernelArgs(s string) error {
	for _, arg := range strings.Split(s, " ") {
		if i := strings.IndexFunc(arg, func(r rune) bool { return !argChar(r) }); i >= 0 {
			return fmt.Errorf("character %q in kernel argument %q is not allowed (letters, digits and -._~:/[]@%%+,=^!* only)", runeAt(arg, i), arg)
		}
	}
	if len(s) > 1024 {
		return fmt.Errorf("kernel arguments are %d bytes, more than 1024", len(s))
	}
	return nil
}

func runeAt(s string, i int) rune {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r
}
