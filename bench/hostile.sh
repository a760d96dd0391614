#!/usr/bin/env bash
# Issue 9's hostile network at full size: 20,000 idle connections on the
# API and boot ports and 1,000 slow login bodies against a server process
# limited to 20,000 open files, with the default limits. Prints how long
# /healthz, a passcode login, an authenticated machine and the admin socket
# took during the attack, how many of the attack's connections the server
# held, and when the slow bodies were cut. The unit suite runs the same
# test at a tenth of the size (docs/security.md).
#
#   bench/hostile.sh      (two attacker processes hold 10,000 idle
#                          connections each: each needs a hard open-file
#                          limit above 10,500)
set -euo pipefail
cd "$(dirname "$0")/.."
IMPRINT_HOSTILE=full go test -count=1 -run '^TestHostileNetwork$' -v -timeout 10m ./internal/server/
