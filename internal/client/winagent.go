package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// WindowsAgent downloads the server's windows/amd64 agent into w and
// checks it against the SHA-256 the server sends in X-Imprint-SHA256. On
// an error what was written to w must be thrown away. It returns the
// checked SHA-256 (hex).
func (m *Machine) WindowsAgent(ctx context.Context, w io.Writer) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base+"/v1/agent/windows-amd64", nil)
	if err != nil {
		return "", fmt.Errorf("windows agent: %w", err)
	}
	req.Header.Set("Accept", "application/octet-stream, application/json")
	resp, err := m.do(req)
	if err != nil {
		return "", fmt.Errorf("windows agent: %w", err)
	}
	defer resp.Body.Close()
	want := strings.ToLower(strings.TrimSpace(resp.Header.Get("X-Imprint-SHA256")))
	if len(want) != sha256.Size*2 {
		return "", deploy.Errorf(deploy.KindInvalid, "windows agent: the server sent no valid X-Imprint-SHA256 (%q)", want)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), resp.Body); err != nil {
		return "", fmt.Errorf("windows agent: download: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", deploy.Errorf(deploy.KindInvalid, "windows agent: the download has SHA-256 %s, the server said %s", got, want)
	}
	return want, nil
}
