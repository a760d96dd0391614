package auth_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// testParams are cheap Argon2 parameters so tests run fast under -race.
func testParams() auth.Argon2Params {
	return auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

func mustHash(t *testing.T, p string) string {
	t.Helper()
	h, err := auth.HashPasscode(p, testParams())
	if err != nil {
		t.Fatalf("HashPasscode: %v", err)
	}
	return h
}

func TestHashPasscodeDefaultFormat(t *testing.T) {
	h, err := auth.HashPasscode("correct horse battery", auth.DefaultArgon2Params())
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=3,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Errorf("PHC string %q does not match %s", h, re)
	}
	if h2, _ := auth.HashPasscode("correct horse battery", auth.DefaultArgon2Params()); h2 == h {
		t.Error("two hashes of the same passcode are equal: salt is not random")
	}
}

func TestVerifyPasscode(t *testing.T) {
	long := strings.Repeat("abcdefghij", 20) // 200 characters
	tests := []struct {
		name, set, try string
		want           bool
	}{
		{"same", "Tr1cky-Passc0de", "Tr1cky-Passc0de", true},
		{"wrong", "Tr1cky-Passc0de", "Tr1cky-Passc0dE", false},
		{"no case folding", "Tr1cky-Passc0de", "tr1cky-passc0de", false},
		{"no trimming", "Tr1cky-Passc0de", "Tr1cky-Passc0de ", false},
		{"empty", "Tr1cky-Passc0de", "", false},
		{"no truncation", long, long[:199] + "X", false},
		{"long same", long, long, true},
		{"NFKC composed vs decomposed", "caf\u00e9 au lait", "cafe\u0301 au lait", true},
		{"NFKC decomposed vs composed", "cafe\u0301 au lait", "caf\u00e9 au lait", true},
		{"NFKC compatibility (fullwidth)", "ＡＢＣ12345", "ABC12345", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.VerifyPasscode(mustHash(t, tt.set), tt.try)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("VerifyPasscode = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifyPasscodeRejectsMalformedPHC(t *testing.T) {
	good := mustHash(t, "anything at all")
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=64,t=1,p=1, salt, hash
	join := func(p ...string) string { return strings.Join(p, "$") }
	tests := map[string]string{
		"empty":             "",
		"argon2i":           join("", "argon2i", parts[2], parts[3], parts[4], parts[5]),
		"version 16":        join("", "argon2id", "v=16", parts[3], parts[4], parts[5]),
		"missing hash":      join("", "argon2id", parts[2], parts[3], parts[4]),
		"extra field":       good + "$AAAA",
		"no leading $":      strings.TrimPrefix(good, "$"),
		"params reordered":  join("", "argon2id", parts[2], "t=1,m=64,p=1", parts[4], parts[5]),
		"leading zero":      join("", "argon2id", parts[2], "m=064,t=1,p=1", parts[4], parts[5]),
		"plus sign":         join("", "argon2id", parts[2], "m=+64,t=1,p=1", parts[4], parts[5]),
		"p zero":            join("", "argon2id", parts[2], "m=64,t=1,p=0", parts[4], parts[5]),
		"memory too large":  join("", "argon2id", parts[2], "m=4294967295,t=1,p=1", parts[4], parts[5]),
		"time too large":    join("", "argon2id", parts[2], "m=64,t=1000,p=1", parts[4], parts[5]),
		"padded salt":       join("", "argon2id", parts[2], parts[3], parts[4]+"==", parts[5]),
		"short salt":        join("", "argon2id", parts[2], parts[3], "AAAA", parts[5]),
		"short hash":        join("", "argon2id", parts[2], parts[3], parts[4], "AAAAAAAA"),
		"not base64":        join("", "argon2id", parts[2], parts[3], parts[4], "!!!!"+parts[5][4:]),
		"trailing newline":  good + "\n",
		"uppercase algname": join("", "ARGON2ID", parts[2], parts[3], parts[4], parts[5]),
	}
	for name, phc := range tests {
		t.Run(name, func(t *testing.T) {
			ok, err := auth.VerifyPasscode(phc, "anything at all")
			if err == nil || ok {
				t.Errorf("VerifyPasscode(%q) = %v, %v; want an error", phc, ok, err)
			}
		})
	}
	if ok, err := auth.VerifyPasscode(good, "anything at all"); !ok || err != nil {
		t.Fatalf("control: VerifyPasscode(good) = %v, %v", ok, err)
	}
}

func TestHashPasscodeRejectsBadParams(t *testing.T) {
	for name, p := range map[string]auth.Argon2Params{
		"zero":         {},
		"no threads":   {Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32},
		"short salt":   {Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		"short key":    {Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
		"memory < 8*p": {Memory: 8, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := auth.HashPasscode("whatever you like", p); err == nil {
				t.Error("HashPasscode accepted bad params")
			}
		})
	}
}

func TestCheckPasscodePolicy(t *testing.T) {
	tests := []struct {
		passcode string
		want     string // substring of the error; "" = accepted
	}{
		{"correct horse battery staple", ""},
		{"Kx9-vantage-Mole", ""},
		{"zq7!Tr0mbone", ""},
		{"caf\u00e9-au-lait-77", ""},
		{"4 bears in the bath", ""},
		{"", "too short"},
		{"abc1234", "too short"},
		{"é" + strings.Repeat("x", 6), "too short"},
		{strings.Repeat("ab3", 43), "too long"}, // 129 characters
		{"tab\there-ok-no", "control character"},
		{"new\nline-passcode", "control character"},
		{" leading-space-77", "starts or ends with a space"},
		{"trailing-space-77 ", "starts or ends with a space"},
		{"ideographic-space-77\u3000", "starts or ends with a space"},
		{"aaaaaaaa", "repeated"},
		{"abababab", "repeated"},
		{"xyzxyzxyz", "repeated"},
		{"12345678", "sequence"},
		{"87654321", "sequence"},
		{"abcdefghij", "sequence"},
		{"qwertyui", "sequence"},
		{"lkjhgfdsa", "sequence"},
		{"P@ssw0rd", "too common"},
		{"password", "too common"},
		{"PASSWORD", "too common"},
		{"Passw0rd", "too common"},
		{"P@ssw0rd123456!", "too common"},
		{"qwerty123", "too common"},
		{"letmein!!", "too common"},
		{"welcome1", "too common"},
		{"Welcome2024!", "too common"},
		{"deployr1", "too common"},
		{"DeployR2024", "too common"},
		{"deployrdeployr1", "too common"},
		{"imprint!", "too common"},
		{"1mpr1nt2025", "too common"},
		{"2pint2024", "too common"},
		{"iPXE-boot", "too common"},
		{"winpe123", "too common"},
		{"@dmin1234", "too common"},
		{"adminpassword", "too common"},
		{"changeme!", "too common"},
		{"Ch4ng3M3!", "too common"},
		{"pass word 1", "too common"},
		{"1qaz2wsx", "too common"},
	}
	for _, tt := range tests {
		t.Run(tt.passcode, func(t *testing.T) {
			err := auth.CheckPasscodePolicy(tt.passcode)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if deploy.ErrorKind(err) != deploy.KindInvalid {
				t.Errorf("kind = %q, want invalid", deploy.ErrorKind(err))
			}
			if len(tt.passcode) >= 3 && strings.Contains(err.Error(), tt.passcode) {
				t.Errorf("error message %q echoes the passcode", err)
			}
		})
	}
}

func TestGeneratePasscode(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)
	seen := map[string]bool{}
	symbols := map[rune]bool{}
	for range 1000 {
		code, err := auth.GeneratePasscode()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(code) {
			t.Fatalf("code %q does not match %s", code, re)
		}
		if seen[code] {
			t.Fatalf("code %q generated twice", code)
		}
		seen[code] = true
		for _, r := range code {
			symbols[r] = true
		}
	}
	// 32 symbols plus the dash: every symbol of the alphabet is used.
	if len(symbols) != 33 {
		t.Errorf("generated codes use %d distinct characters, want 33", len(symbols))
	}
}

func TestCanonicalGenerated(t *testing.T) {
	tests := map[string]string{
		"K7QX-M3PA-9RTZ":   "K7QXM3PA9RTZ",
		"k7qx m3pa 9rtz":   "K7QXM3PA9RTZ",
		"k7qxm3pa9rtz":     "K7QXM3PA9RTZ",
		"O0Il-1000-AAAA":   "00111000AAAA",
		" k7qx-m3pa-9rtz ": "K7QXM3PA9RTZ",
	}
	got := map[string]string{}
	for in := range tests {
		got[in] = auth.CanonicalGenerated(in)
	}
	if diff := cmp.Diff(tests, got); diff != "" {
		t.Errorf("CanonicalGenerated (-want +got):\n%s", diff)
	}
}
