package main

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// The agent signs in to Entra ID (the device-code flow) but never checks
// an access token: that is the server's job. It must not link the JWT
// library, the token validator or the server (issue 14), on either OS it
// runs on.
func TestAgentDoesNotLinkServerSide(t *testing.T) {
	gobin := testenv.LookPath(t, "go")
	forbidden := []string{
		"github.com/golang-jwt/jwt",
		"github.com/imprint-osd/imprint/internal/auth/entra/accesstoken",
		"github.com/imprint-osd/imprint/internal/server",
		"github.com/imprint-osd/imprint/internal/store",
	}
	for _, goos := range []string{"linux", "windows"} {
		cmd := exec.Command(gobin, "list", "-deps", ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps (%s): %v", goos, err)
		}
		deps := strings.Fields(string(out))
		// The agent does sign in with Entra ID: the list is the real one.
		if !slices.Contains(deps, "github.com/imprint-osd/imprint/internal/auth/entra") {
			t.Fatalf("GOOS=%s: go list -deps does not list internal/auth/entra; is it the agent's list? %d packages", goos, len(deps))
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("GOOS=%s: imprint-agent links %s", goos, d)
				}
			}
		}
	}
}
