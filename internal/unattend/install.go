package unattend

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imprint-osd/imprint/internal/hive"
	"github.com/imprint-osd/imprint/internal/winboot"
)

// imageScriptMarker separates our SetupComplete.cmd lines from the image's.
const imageScriptMarker = "rem The image's own SetupComplete.cmd follows.\r\n"

// RunOnceKey is where the AutoAdminLogon method's command goes in the
// SOFTWARE hive (HKLM\Software\...\RunOnce).
const RunOnceKey = `Microsoft\Windows\CurrentVersion\RunOnce`

// Install writes res onto the Windows volume mounted at root: the answer
// file to Windows\Panther\unattend.xml, SetupComplete.cmd (in front of any
// the image already has, which still runs after ours) and, for the
// AutoAdminLogon method, the RunOnce value in the offline SOFTWARE hive. It
// returns the paths written, relative to root.
func Install(root string, res *Result, filetime uint64) ([]string, error) {
	var written []string
	panther, err := winboot.MkdirCI(root, `Windows\Panther`)
	if err != nil {
		return nil, fmt.Errorf("answer file: %w", err)
	}
	// An earlier answer file with another case (Unattend.xml) would be
	// found by Setup too: replace it rather than sit beside it.
	dst := filepath.Join(panther, "unattend.xml")
	if p, err := winboot.FindCI(panther, "unattend.xml"); err == nil {
		dst = p
	}
	if err := winboot.WriteFile(dst, res.Unattend); err != nil {
		return nil, fmt.Errorf("answer file: %w", err)
	}
	written = append(written, AnswerFile)

	scripts, err := winboot.MkdirCI(root, `Windows\Setup\Scripts`)
	if err != nil {
		return nil, fmt.Errorf("SetupComplete.cmd: %w", err)
	}
	sc := filepath.Join(scripts, "SetupComplete.cmd")
	body := res.SetupComplete
	if p, err := winboot.FindCI(scripts, "SetupComplete.cmd"); err == nil {
		old, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("SetupComplete.cmd: %w", err)
		}
		// The image's own script, without what an earlier run of ours put
		// in front of it.
		own := string(old)
		if strings.Contains(own, "Written by Imprint") {
			own = ""
			if _, after, ok := strings.Cut(string(old), imageScriptMarker); ok {
				own = after
			}
		}
		if own != "" {
			body = append(append([]byte{}, body...), imageScriptMarker+own...)
		}
		sc = p
	}
	if err := winboot.WriteFile(sc, body); err != nil {
		return nil, fmt.Errorf("SetupComplete.cmd: %w", err)
	}
	written = append(written, SetupCompleteFile)

	if res.RunOnce != "" {
		if err := winboot.EditHive(root, "SOFTWARE", filetime, func(h *hive.Hive) error {
			k, err := h.Root.Create(RunOnceKey, filetime)
			if err != nil {
				return err
			}
			k.SetString(RunOnceName, res.RunOnce)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("RunOnce: %w", err)
		}
		written = append(written, `Windows\System32\config\SOFTWARE`)
	}
	return written, nil
}
