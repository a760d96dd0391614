package stepdefs_test

import (
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/stepdefs"
)

// TestEveryDeployRIDSeenIsMapped: each DeployR built-in id seen in public
// DeployR material (spec §5, the shared corpus, the 0003 and 0019)
// is either in the catalogue or an explicit "not supported yet" entry, and
// the message for an unknown one never suggests importing it.
func TestEveryDeployRIDSeenIsMapped(t *testing.T) {
	seen := []string{"01", "02", "03", "05", "06", "07", "08", "09", "0b", "0d", "0e", "11", "12", "19", "21"}
	for _, n := range seen {
		id := "00000001-0000-0000-0000-0000000000" + n
		_, builtin := stepdefs.Builtin(id)
		name, unsupported := stepdefs.Unsupported(id)
		if builtin == unsupported {
			t.Errorf("%s: in the catalogue %v, unsupported entry %v (%q); want exactly one", id, builtin, unsupported, name)
		}
	}
	for _, id := range []string{"00000001-0000-0000-0000-000000000019", "00000001-0000-0000-0000-00000000007f"} {
		msg := stepdefs.UnsupportedMessage(id)
		if !strings.HasPrefix(msg, "DeployR built-in step type "+id) || !strings.Contains(msg, "is not supported by this server") ||
			strings.Contains(strings.ToLower(msg), "import") {
			t.Errorf("UnsupportedMessage(%s) = %q", id, msg)
		}
	}
}
