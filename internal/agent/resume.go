package agent

import (
	"fmt"
	"strings"
)

// ResumeUnitName is the systemd unit that restarts the agent after a
// reboot in an installed Linux.
const ResumeUnitName = "imprint-agent-resume.service"

// ResumeUnit returns the unit file that runs `EXE resume --state DIR` once
// the network is up.
func ResumeUnit(exe, stateDir string) string {
	q := func(s string) string {
		if strings.ContainsAny(s, " \t\"\\") {
			return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
		}
		return s
	}
	return fmt.Sprintf(`[Unit]
Description=Resume the Imprint task sequence after a reboot
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=%s resume --state %s
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
`, q(exe), q(stateDir))
}
