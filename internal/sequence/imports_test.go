package sequence_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/testenv"
)

// The engine is shared by the agent and the server; neither it nor anything
// it imports may pull in HTTP or SQL.
func TestNoHTTPOrSQLImports(t *testing.T) {
	gobin := testenv.LookPath(t, "go")
	forbidden := []string{"net/http", "database/sql"}
	for _, goos := range []string{"linux", "windows"} {
		cmd := exec.Command(gobin, "list", "-deps", ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps (%s): %v", goos, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 5 {
			t.Fatalf("go list -deps (%s) printed too little to be real: %q", goos, deps)
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("GOOS=%s: package sequence depends on %s", goos, d)
				}
			}
		}
	}
}
