package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/client"
)

// WindowsAgent checks the bytes against the server's SHA-256: a transfer
// that does not match, or an answer without the hash, is an error.
func TestWindowsAgentChecksSHA256(t *testing.T) {
	exe := []byte("MZ windows agent")
	good := sha256.Sum256(exe)
	tests := []struct {
		name, header string
		wantErr      string
	}{
		{"match", hex.EncodeToString(good[:]), ""},
		{"match, upper case", strings.ToUpper(hex.EncodeToString(good[:])), ""},
		{"mismatch", strings.Repeat("ab", 32), "the download has SHA-256"},
		{"no hash", "", "no valid X-Imprint-SHA256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/agent/windows-amd64" || r.Header.Get("Authorization") != "Bearer tok" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("X-Imprint-SHA256", tt.header)
				_, _ = w.Write(exe)
			}))
			defer srv.Close()
			m, err := client.NewMachine(srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
			if err != nil {
				t.Fatal(err)
			}
			m.SetToken("tok")
			var buf bytes.Buffer
			sum, err := m.WindowsAgent(context.Background(), &buf)
			if tt.wantErr == "" {
				if err != nil || sum != hex.EncodeToString(good[:]) || !bytes.Equal(buf.Bytes(), exe) {
					t.Errorf("WindowsAgent = %q, %v (%q)", sum, err, buf.Bytes())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
