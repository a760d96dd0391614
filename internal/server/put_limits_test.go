package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// nestedTS is a task sequence whose one version holds depth groups nested
// inside each other.
func nestedTS(id string, depth int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":%q,"name":"Deep","architecture":"Any","versions":[{"id":"v1","taskSequenceId":%q,"versionNo":1,"status":"In_Development","steps":[`, id, id)
	for i := range depth {
		if i > 0 {
			b.WriteString(`,"groupMembers":[`)
		}
		fmt.Fprintf(&b, `{"id":"g%d","name":"G%d","isGroup":true,"enabled":true`, i, i)
	}
	for i := range depth {
		if i > 0 {
			b.WriteString(`}]`)
		}
	}
	b.WriteString(`}]}]}`)
	return b.String()
}

// TestPutTSKeepsImportLimits: a PUT of a whole task sequence meets the
// import's depth limit (a bare JSON decode had none) and its field types.
func TestPutTSKeepsImportLimits(t *testing.T) {
	ts := startServer(t, t.TempDir())
	const id = "1a2b3c4d-0000-4000-8000-00000000d00d"
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(nestedTS(id, 3)), nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("import of a shallow sequence: %d", resp.StatusCode)
	}
	if resp := ts.do(t, "PUT", "/admin/v1/tasksequences/"+id, strings.NewReader(nestedTS(id, 5)), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT of 5 nested groups: %d, want 200", resp.StatusCode)
	}
	resp := ts.do(t, "PUT", "/admin/v1/tasksequences/"+id, strings.NewReader(nestedTS(id, 40)), nil)
	wantError(t, resp, http.StatusBadRequest, "invalid", "nests deeper than")
	resp = ts.do(t, "PUT", "/admin/v1/tasksequences/"+id, strings.NewReader(`{"id":"`+id+`","name":"x","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"`+id+`","versionNo":1,"status":"In_Development","steps":[{"id":"s","name":"s","enabled":"yes"}]}]}`), nil)
	wantError(t, resp, http.StatusBadRequest, "invalid", "enabled")
}
