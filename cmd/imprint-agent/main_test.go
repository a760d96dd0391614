package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/steps/script"
)

func TestVarSetWritesTheVarsFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "vars")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(script.EnvVarsFile, f)
	if err := run(context.Background(), []string{"var", "set", "OSDComputerName", "PC-7"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	got, err := script.ReadVars(f)
	if err != nil || len(got) != 1 || got[0] != [2]string{"OSDComputerName", "PC-7"} {
		t.Fatalf("vars = %v, %v", got, err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage:"},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"run"}, "--server is required"},
		{[]string{"run", "--server", "https://x:7281"}, "--ca FILE or --ca-sha256 HEX is required"},
		{[]string{"run", "--server", "https://x:7281", "--ca-sha256", "abc"}, "is not a SHA-256"},
		{[]string{"run", "--var", "novalue"}, `--var "novalue": want NAME=VALUE`},
		{[]string{"var", "set", "A"}, "usage: imprint-agent var set NAME VALUE"},
		{[]string{"resume", "--state", "/nonexistent-imprint"}, "no run to resume"},
		{[]string{"run", "--server", "https://x:7281", "--ca-sha256", strings.Repeat("ab", 32), "--cert", "c.pem"}, "--cert needs --key"},
		{[]string{"run", "--server", "https://x:7281", "--ca-sha256", strings.Repeat("ab", 32), "--key", "k.pem"}, "--key needs --cert"},
		{[]string{"run", "--server", "https://x:7281", "--ca-sha256", strings.Repeat("ab", 32), "--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem"}, "--cert /nonexistent/c.pem --key /nonexistent/k.pem: open /nonexistent/c.pem"},
	} {
		err := run(context.Background(), tc.args, nil, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, nil, &out, &out); err != nil || !strings.HasPrefix(out.String(), "imprint-agent ") {
		t.Errorf("version: %q, %v", out.String(), err)
	}
}

func TestCertFromEnvironment(t *testing.T) {
	t.Setenv("IMPRINT_CERT", "/nonexistent/env-cert.pem")
	err := run(context.Background(), []string{"run", "--server", "https://x:7281", "--ca-sha256", strings.Repeat("ab", 32)}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--cert needs --key") {
		t.Fatalf("IMPRINT_CERT without IMPRINT_KEY: err = %v", err)
	}
	t.Setenv("IMPRINT_KEY", "/nonexistent/env-key.pem")
	err = run(context.Background(), []string{"run", "--server", "https://x:7281", "--ca-sha256", strings.Repeat("ab", 32)}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/env-cert.pem") {
		t.Fatalf("IMPRINT_CERT and IMPRINT_KEY: err = %v, want the certificate file named", err)
	}
}

func TestDialWithClientCertificate(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "pc-07"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)

	c, st, err := dial("https://x:7281", "", strings.Repeat("ab", 32), certFile, keyFile)
	if err != nil || !c.HasClientCert() || st.CertFile != certFile || st.KeyFile != keyFile {
		t.Fatalf("dial with --cert/--key: %v, HasClientCert %v, state %+v", err, c != nil && c.HasClientCert(), st)
	}
	if _, _, err := dial("https://x:7281", "", strings.Repeat("ab", 32), keyFile, certFile); err == nil {
		t.Fatal("swapped --cert and --key accepted")
	}
	c, _, err = dial("https://x:7281", "", strings.Repeat("ab", 32), "", "")
	if err != nil || c.HasClientCert() {
		t.Fatalf("dial without a certificate: %v, HasClientCert %v", err, c.HasClientCert())
	}
}

// TestWindowsStateDir: on Windows `resume` finds the run where the
// continuation staged it without being told (--state).
func TestWindowsStateDir(t *testing.T) {
	for drive, want := range map[string]string{"D:": `D:\ProgramData\Imprint\state`, "": `C:\ProgramData\Imprint\state`} {
		got := windowsStateDir(func(k string) string {
			if k == "SystemDrive" {
				return drive
			}
			return ""
		})
		if got != want {
			t.Errorf("SystemDrive %q: state dir %q, want %q", drive, got, want)
		}
	}
}
