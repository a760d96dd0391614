package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Run runs every conformance test, each on a store returned by open.
// open must return an empty store and arrange for it to be closed (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) deploy.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) deploy.Store)
	}{
		{"ContentItemRoundTrip", testContentItemRoundTrip},
		{"ContentNotFound", testContentNotFound},
		{"ContentConflicts", testContentConflicts},
		{"ContentVersionNumbering", testContentVersionNumbering},
		{"ContentUpdates", testContentUpdates},
		{"ContentInvalid", testContentInvalid},
		{"ContentOrphans", testContentOrphans},
		{"ContentItemsList", testContentItemsList},
		{"ContentImportAndFill", testContentImportAndFill},
		{"TaskSequencesCompat", testTaskSequencesCompat},
		{"StepDefinitionsCompat", testStepDefinitionsCompat},
		{"DocumentsNotFound", testDocumentsNotFound},
		{"DocumentsGeneratedIDs", testDocumentsGeneratedIDs},
		{"Settings", testSettings},
		{"UpdateSetting", testUpdateSetting},
		{"Devices", testDevices},
		{"RunRoundTrip", testRunRoundTrip},
		{"RunsFilter", testRunsFilter},
		{"BootState", testBootState},
		{"NextBoots", testNextBoots},
		{"RunEvents", testRunEvents},
		{"AppendRunEvents", testAppendRunEvents},
		{"MarkLostRuns", testMarkLostRuns},
		{"Sessions", testSessions},
		{"RevokeSessions", testRevokeSessions},
		{"AuditChain", testAuditChain},
		{"Users", testUsers},
		{"ThrottleWindow", testThrottleWindow},
		{"ThrottleAllOrNone", testThrottleAllOrNone},
		{"ThrottleRelease", testThrottleRelease},
		{"ThrottleInvalid", testThrottleInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// CompatDir is where the DeployR export corpus lives, relative to the
// directory of a store implementation's package.
const CompatDir = "../../../../shared/compat/deployr"

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkGUID fails unless id is a lowercase GUID.
func checkGUID(t *testing.T, what, id string) {
	t.Helper()
	if !guidRE.MatchString(id) {
		t.Errorf("%s = %q, want a generated lowercase GUID", what, id)
	}
}

// wantKind fails unless err is a domain error of kind want.
func wantKind(t *testing.T, what string, err error, want deploy.Kind) {
	t.Helper()
	if got := deploy.ErrorKind(err); got != want {
		t.Errorf("%s: error kind = %q (err %v), want %q", what, got, err, want)
	}
}

// must fails the test at once on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// asJSON encodes v and decodes it again as generic JSON, for comparing
// documents the way an export would see them.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return out
}

// sameJSON fails when want and got differ as generic JSON.
func sameJSON(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(asJSON(t, want), asJSON(t, got)); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", what, d)
	}
}

// compatFiles returns the contents of the corpus files in sub, by name.
func compatFiles(t *testing.T, sub string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(CompatDir, sub, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no compat files under %s", filepath.Join(CompatDir, sub))
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func ctx(t *testing.T) context.Context { return t.Context() }

// CheckSchema fails t unless the store reports a schema version of at
// least 1 and schema_migrations (read through sqlDB) holds one row per
// version; it returns the version.
func CheckSchema(t *testing.T, s interface {
	SchemaVersion(context.Context) (int, error)
}, sqlDB *sql.DB) int {
	t.Helper()
	v, err := s.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v < 1 {
		t.Fatalf("schema version after Open = %d, want >= 1", v)
	}
	var rows int
	if err := sqlDB.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != v {
		t.Errorf("schema_migrations has %d rows, want one per version up to %d", rows, v)
	}
	return v
}

// CheckTablesListed fails t unless the schema's tables (the names query
// returns through sqlDB, schema_migrations aside) are exactly listed, the
// tables copy, backup and restore carry (sqlstore.Tables): a table the
// list misses would be lost by imprint migrate and imprint backup.
func CheckTablesListed(t *testing.T, sqlDB *sql.DB, query string, listed []string) {
	t.Helper()
	rows, err := sqlDB.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var schema []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name != "schema_migrations" {
			schema = append(schema, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(schema)
	listed = slices.Sorted(slices.Values(listed))
	if d := cmp.Diff(schema, listed); d != "" {
		t.Errorf("tables copied and backed up differ from the schema's (-schema +listed):\n%s", d)
	}
}
