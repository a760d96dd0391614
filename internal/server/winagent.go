package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// WindowsAgentSHA256Header carries the SHA-256 (hex) of the Windows agent
// GET /v1/agent/windows-amd64 serves; the agent checks the bytes against
// it before staging them on the Windows partition.
const WindowsAgentSHA256Header = "X-Imprint-SHA256"

// WindowsAgentPath is where the server looks for the windows/amd64 agent
// first: DIR/agents/windows-amd64/imprint-agent.exe.
func WindowsAgentPath(dataDir string) string {
	return filepath.Join(dataDir, "agents", "windows-amd64", "imprint-agent.exe")
}

// windowsAgent finds the windows/amd64 agent: Config.WindowsAgent when
// set, else DATA/agents/windows-amd64/imprint-agent.exe, else
// imprint-agent.exe beside the server's executable (where `make build`
// puts it: bin/imprint and bin/imprint-agent.exe).
func (s *Server) windowsAgent() (*os.File, error) {
	var tried []string
	try := func(p string) (*os.File, error) {
		tried = append(tried, p)
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return f, err
	}
	paths := []string{s.cfg.WindowsAgent}
	if s.cfg.WindowsAgent == "" {
		paths = []string{WindowsAgentPath(s.cfg.DataDir)}
		if exe, err := os.Executable(); err == nil {
			paths = append(paths, filepath.Join(filepath.Dir(exe), "imprint-agent.exe"))
		}
	}
	for _, p := range paths {
		f, err := try(p)
		if err != nil {
			return nil, fmt.Errorf("windows agent: %w", err)
		}
		if f != nil {
			return f, nil
		}
	}
	return nil, deploy.Errorf(deploy.KindNotFound,
		"the server has no Windows agent: build it with make build (bin/imprint-agent.exe beside bin/imprint) or put it at %s (looked at %q)",
		WindowsAgentPath(s.cfg.DataDir), tried)
}

// machineWindowsAgent serves the windows/amd64 agent to an authenticated
// machine (the boot image stages it on the Windows partition), with its
// SHA-256 in WindowsAgentSHA256Header.
func (s *Server) machineWindowsAgent(w http.ResponseWriter, r *http.Request) error {
	f, err := s.windowsAgent()
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("windows agent %s: not a regular file (%v)", f.Name(), err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("windows agent: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("windows agent: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	w.Header().Set(WindowsAgentSHA256Header, sum)
	w.Header().Set("ETag", `"`+sum+`"`)
	w.Header().Set("Content-Type", "application/vnd.microsoft.portable-executable")
	http.ServeContent(w, r, "imprint-agent.exe", fi.ModTime(), f)
	return nil
}
