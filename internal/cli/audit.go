package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

const usageAudit = `usage: imprint audit [--after SEQ] [--limit N]
       imprint audit verify

The audit log records every authentication attempt, passcode and settings
change and session revocation. It is append-only and hash-chained.

  imprint audit          list entries after SEQ (default from the start),
                         at most N (default the server's page size)
  imprint audit verify   check the whole hash chain; exit status 1 naming
                         the first broken entry
`

func runAudit(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint audit", usageAudit)
	after := fs.Int64("after", 0, "")
	limit := fs.Int("limit", 0, "")
	pos, err := a.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		if pos[0] != "verify" {
			return usagef(fmt.Sprintf("imprint audit: unknown subcommand %q (only verify)", pos[0]), usageAudit)
		}
		return auditVerify(ctx, a)
	}
	if *after < 0 || *limit < 0 {
		return usagef("imprint audit: --after and --limit must not be negative", usageAudit)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	events, err := c.AuditEvents(ctx, *after, *limit)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if a.jsonOut {
		if events == nil {
			events = []*deploy.AuditEvent{}
		}
		return a.printJSON(events)
	}
	if len(events) == 0 {
		fmt.Fprintln(a.stdout, "No audit entries.")
		return nil
	}
	rows := [][]string{{"SEQ", "TIME", "ACTION", "OUTCOME", "SOURCE", "DEVICE", "ACTOR", "DETAILS"}}
	for _, e := range events {
		rows = append(rows, []string{strconv.FormatInt(e.Seq, 10), stamp(e.Time), cell(e.Action), cell(e.Outcome),
			cell(e.Source), cell(e.DeviceID), cell(e.Actor), details(e.Details)})
	}
	return table(a.stdout, rows)
}

// details formats audit details as sorted key=value pairs.
func details(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + oneLine(m[k])
	}
	return strings.Join(parts, " ")
}

func auditVerify(ctx context.Context, a *app) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	n, err := c.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"verified": n, "ok": true})
	}
	fmt.Fprintf(a.stdout, "audit log intact: %d entries verified\n", n)
	return nil
}
