package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// printJSON writes v as indented JSON, with the characters a terminal
// would act on escaped (safeJSON).
func (a *app) printJSON(v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	if _, err := a.stdout.Write(safeJSON(b.Bytes())); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// table writes aligned rows; the first row is the header. Every cell is
// escaped (safe): a tab or newline in a value cannot shift a column or
// forge a row, nor can an escape sequence reach the terminal.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = safe(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// field writes aligned "key: value" lines, skipping empty values; values
// are escaped (safe).
func fields(w io.Writer, kv [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, p := range kv {
		if p[1] == "" {
			continue
		}
		fmt.Fprintf(tw, "%s:\t%s\n", p[0], safe(p[1]))
	}
	return tw.Flush()
}

// cell makes a value safe for one table cell: one line, escaped, cut.
func cell(s string) string {
	s = safe(oneLine(s))
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > 60 {
		return string(r[:59]) + "…"
	}
	return s
}

// when formats a DeployR timestamp (Unix seconds) in UTC.
func when(sec int64) string {
	if sec == 0 {
		return ""
	}
	return time.Unix(sec, 0).UTC().Format("2006-01-02 15:04:05Z")
}

// printWarnings lists field problems under a heading.
func printFieldErrors(w io.Writer, heading string, fe []deploy.FieldError) {
	if len(fe) == 0 {
		return
	}
	fmt.Fprintf(w, "%s (%d):\n", heading, len(fe))
	for _, f := range fe {
		fmt.Fprintf(w, "  %s\n", safe(oneLine(f.String())))
	}
}

// humanBytes formats n with binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
