package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"go.yaml.in/yaml/v3"

	"github.com/imprint-osd/imprint/internal/server"
)

// openAPIOps reads the served document and returns its operations as
// "METHOD /path", and the ones marked x-imprint-socket-only.
func openAPIOps(t *testing.T, ts *testServer) (ops, socketOnly map[string]bool) {
	t.Helper()
	resp, err := ts.api.Get(ts.apiURL("/v1/openapi.json")) // no token: public
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/openapi.json: %d %s %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the served document is not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	ops, socketOnly = map[string]bool{}, map[string]bool{}
	for path, item := range doc.Paths {
		for key, raw := range item {
			method := strings.ToUpper(key)
			if !slices.Contains([]string{"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}, method) {
				continue // parameters, servers, summary…
			}
			op := method + " " + path
			ops[op] = true
			var o struct {
				SocketOnly bool `json:"x-imprint-socket-only"`
			}
			json.Unmarshal(raw, &o)
			socketOnly[op] = o.SocketOnly
		}
	}
	return ops, socketOnly
}

// Every route the server's routers register is in the OpenAPI document
// with its method and path, every documented operation is routed, and the
// admin routes only the socket serves are the ones marked so.
func TestOpenAPIMatchesRouter(t *testing.T) {
	ts := startServer(t, t.TempDir())
	documented, socketOnly := openAPIOps(t, ts)
	table := ts.RouteTable()
	// The routers that are not mounts of another.
	mounts := map[string]string{"/admin/v1/": "the admin API, mounted", "/": "the boot files (internal/boot)"}
	routed := map[string]bool{}
	for _, name := range []string{"api", "api-admin", "socket", "socket-admin", "boot"} {
		if len(table[name]) == 0 {
			t.Fatalf("router %s registered no routes", name)
		}
		for _, pattern := range table[name] {
			method, path, ok := strings.Cut(pattern, " ")
			if !ok {
				if _, mount := mounts[pattern]; !mount {
					t.Errorf("router %s: %q has no method, so the document cannot describe it", name, pattern)
				}
				continue
			}
			op := method + " " + strings.ReplaceAll(path, "...}", "}")
			routed[op] = true
			if !documented[op] {
				t.Errorf("%s (router %s) is not in internal/server/openapi.yaml", op, name)
			}
		}
	}
	for op := range documented {
		if !routed[op] {
			t.Errorf("%s is documented in openapi.yaml but no router has it", op)
		}
	}
	overHTTPS := map[string]bool{}
	for _, p := range table["api-admin"] {
		overHTTPS[p] = true
	}
	for _, p := range table["socket-admin"] {
		if want := !overHTTPS[p]; socketOnly[p] != want {
			t.Errorf("%s: x-imprint-socket-only is %v, want %v", p, socketOnly[p], want)
		}
	}
}

// The document is well-formed OpenAPI 3.1: it validates against the
// OpenAPI 3.1 schema, its model builds with every $ref resolved, each
// path parameter is declared, and operation ids are unique.
func TestOpenAPIIsValid31(t *testing.T) {
	doc, err := libopenapi.NewDocument(server.OpenAPIYAML())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("version %q", v)
	}
	if ok, errs := schema_validation.ValidateOpenAPIDocument(doc); !ok {
		for _, e := range errs {
			t.Errorf("schema: %s: %s (line %d)", e.Message, e.Reason, e.SpecLine)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s at %s", se.Reason, se.FieldPath)
			}
		}
	}
	// The OpenAPI 3.1 schema leaves Schema Objects to JSON Schema's own
	// dialect; check at least that every type is one of JSON Schema's.
	var tree any
	if err := yaml.Unmarshal(server.OpenAPIYAML(), &tree); err != nil {
		t.Fatal(err)
	}
	checkSchemaTypes(t, "$", tree)
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build model: %v", err)
	}
	ids := map[string]string{}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	n := 0
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			n++
			where := strings.ToUpper(method) + " " + path
			if op.OperationId == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[op.OperationId]; dup {
				t.Errorf("%s and %s share operationId %s", where, other, op.OperationId)
			}
			ids[op.OperationId] = where
			if op.Responses == nil || op.Responses.Codes.Len() == 0 && op.Responses.Default == nil {
				t.Errorf("%s has no responses", where)
			}
			declared := map[string]bool{}
			for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
				if p.In == "path" {
					declared[p.Name] = true
				}
			}
			for _, m := range param.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s: path parameter %s is not declared", where, m[1])
				}
			}
		}
	}
	if n < 80 {
		t.Errorf("only %d operations in the model: the walk is broken", n)
	}
}

// checkSchemaTypes reports every "type" outside security schemes that is
// not a JSON Schema type.
func checkSchemaTypes(t *testing.T, at string, v any) {
	t.Helper()
	valid := []string{"string", "number", "integer", "boolean", "array", "object", "null"}
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if k == "securitySchemes" {
				continue
			}
			if _, property := c.(map[string]any); k == "type" && !property { // not a property named "type"
				types, ok := c.([]any)
				if !ok {
					types = []any{c}
				}
				for _, ty := range types {
					if s, _ := ty.(string); !slices.Contains(valid, s) {
						t.Errorf("%s.type: %v is not a JSON Schema type", at, ty)
					}
				}
				continue
			}
			checkSchemaTypes(t, at+"."+k, c)
		}
	case []any:
		for i, c := range v {
			checkSchemaTypes(t, fmt.Sprintf("%s[%d]", at, i), c)
		}
	}
}

// The main machine operations describe their bodies, not just a status.
func TestOpenAPIDescribesMachineBodies(t *testing.T) {
	doc, err := libopenapi.NewDocument(server.OpenAPIYAML())
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	paths := model.Model.Paths.PathItems
	for _, c := range []struct {
		path, method, status string
		request              bool
	}{
		{"/v1/auth/token", "post", "200", true},
		{"/v1/runs", "post", "201", true},
		{"/v1/runs/{id}/events", "post", "204", true},
		{"/v1/content/{id}/{no}", "get", "200", false},
		{"/v1/tasksequences", "get", "200", false},
	} {
		item, ok := paths.Get(c.path)
		if !ok {
			t.Errorf("%s is missing", c.path)
			continue
		}
		op, ok := item.GetOperations().Get(c.method)
		if !ok {
			t.Errorf("%s %s is missing", c.method, c.path)
			continue
		}
		if c.request {
			if op.RequestBody == nil {
				t.Errorf("%s %s: no request body", c.method, c.path)
			} else if mt, ok := op.RequestBody.Content.Get("application/json"); !ok || mt.Schema == nil || mt.Schema.Schema() == nil {
				t.Errorf("%s %s: no JSON request schema", c.method, c.path)
			}
		}
		resp, ok := op.Responses.Codes.Get(c.status)
		if !ok {
			t.Errorf("%s %s: no %s response", c.method, c.path, c.status)
			continue
		}
		if c.status == "204" {
			continue
		}
		mt, ok := resp.Content.Get("application/json")
		if !ok || mt.Schema == nil {
			t.Errorf("%s %s: no JSON response schema", c.method, c.path)
			continue
		}
		if s := mt.Schema.Schema(); s == nil || ((s.Properties == nil || s.Properties.Len() == 0) && s.Items == nil && len(s.Type) == 0) {
			t.Errorf("%s %s: the response schema is empty", c.method, c.path)
		}
	}
}
