package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/server"
)

// GET /v1/agent/windows-amd64 serves the Windows agent to a session only,
// with its SHA-256; without one the error says how to build it.
func TestWindowsAgentRoute(t *testing.T) {
	dir := t.TempDir()
	ts := startServerWith(t, dir, func(c *server.Config) { c.PasscodeArgon2 = testArgon2 })
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	_, tok := login(t, ts, "Correct-Horse-Battery-42", "win-agent")
	const route = "/v1/agent/windows-amd64"

	resp := ts.machine(t, "GET", route, tok, nil, nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 404 || !strings.Contains(string(b), "the server has no Windows agent: build it with make build") {
		t.Errorf("without an agent: %d %s", resp.StatusCode, b)
	}

	exe := []byte("MZ\x90\x00 windows agent bytes")
	p := server.WindowsAgentPath(dir)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, exe, 0o644); err != nil {
		t.Fatal(err)
	}
	if resp := ts.machine(t, "GET", route, "", nil, nil); resp.StatusCode != 401 {
		t.Errorf("without a session: %d", resp.StatusCode)
	}
	resp = ts.machine(t, "GET", route, tok, nil, nil)
	b, _ = io.ReadAll(resp.Body)
	sum := sha256.Sum256(exe)
	if resp.StatusCode != 200 || string(b) != string(exe) || resp.Header.Get(server.WindowsAgentSHA256Header) != hex.EncodeToString(sum[:]) {
		t.Errorf("agent: %d %q %s=%q", resp.StatusCode, b, server.WindowsAgentSHA256Header, resp.Header.Get(server.WindowsAgentSHA256Header))
	}
}
