package server_test

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
	"github.com/imprint-osd/imprint/internal/testenv"
)

func startMetricsServer(t *testing.T) *testServer {
	t.Helper()
	return startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.MetricsListen = "127.0.0.1:0"
	})
}

// scrapeText fetches /metrics from the metrics listener.
func scrapeText(t *testing.T, ts *testServer) string {
	t.Helper()
	resp, err := http.Get("http://" + ts.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return string(b)
}

// scrape returns every sample of a scrape by its series, as the text
// format writes it: name{label="value",…}.
func scrape(t *testing.T, ts *testServer) map[string]float64 {
	t.Helper()
	samples := map[string]float64{}
	for _, line := range strings.Split(scrapeText(t, ts), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// Real traffic — logins, a refused guess, a run with a step, a content
// download and boot requests — moves the metrics by what happened.
func TestMetricsCountRealTraffic(t *testing.T) {
	ts := startMetricsServer(t)
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)
	app := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	upload(t, ts, app.ID, strings.NewReader("app bytes"), `{"installationCommandLine":"true"}`)
	const tsID = "11111111-2222-3333-4444-555555555555"
	doc := fmt.Sprintf(`{"id":"%s","name":"Apps","architecture":"Any","versions":[{"id":"v1","taskSequenceId":"%[1]s","versionNo":1,"status":"Active","steps":[
	 {"id":"s1","name":"Install app","isGroup":false,"typeId":"00000001-0000-0000-0000-00000000000b","settings":{},"contentItems":{"Application":"%s:1"},"enabled":true,"continueOnError":false,"condition":null}]}]}`, tsID, app.ID)
	if resp := ts.do(t, "POST", "/admin/v1/tasksequences/import", strings.NewReader(doc), nil); resp.StatusCode != 201 {
		t.Fatalf("import: %d", resp.StatusCode)
	}
	kernel := bytes.Repeat([]byte("k"), 5000)
	kdir := filepath.Join(server.BootImagesDir(ts.dir), "x86_64")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kdir, "vmlinuz"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, ts)

	_, tok := login(t, ts, "Correct-Horse-Battery-42", "dev-metrics")
	ts.machine(t, "GET", "/v1/tasksequences/"+tsID+"/versions/1", tok, nil, nil)
	if r := ts.machine(t, "GET", "/v1/content/"+app.ID+"/1/data", tok, nil, nil); r.StatusCode != 200 {
		t.Fatalf("download: %d", r.StatusCode)
	}
	var run deploy.Run
	if resp := ts.machine(t, "POST", "/v1/runs", tok, map[string]any{"taskSequenceId": tsID, "versionNo": 1}, &run); resp.StatusCode != 201 {
		t.Fatalf("create run: %d", resp.StatusCode)
	}
	events := []map[string]any{
		{"type": "step-start", "stepId": "s1", "path": "Install app", "name": "Install app"},
		{"type": "step-end", "stepId": "s1", "path": "Install app", "outcome": "succeeded", "exitCode": 0, "durationSeconds": 42.5},
		{"type": "run-end", "state": "succeeded"},
	}
	if resp := ts.machine(t, "POST", "/v1/runs/"+run.ID+"/events", tok, events, nil); resp.StatusCode != 204 {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	_, port, _ := net.SplitHostPort(ts.BootAddr().String())
	for _, p := range []string{"/boot.ipxe", "/images/x86_64/vmlinuz"} {
		resp, err := http.Get("http://127.0.0.1:" + port + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}
	// An unknown method is "other", never the client's string; then wrong
	// passcodes until the throttle refuses.
	ts.machine(t, "POST", "/v1/auth/token", "", map[string]any{"method": "made-up-method", "device": map[string]any{"uuid": devUUID("dev-x")}}, nil)
	throttled := false
	for i := 0; i < 12 && !throttled; i++ {
		resp, _ := login(t, ts, "Wrong-Horse-Battery-42", "dev-metrics")
		throttled = resp.StatusCode == 429
	}
	if !throttled {
		t.Fatal("wrong passcodes were never throttled")
	}
	after := scrape(t, ts)

	delta := func(series string) float64 { return after[series] - before[series] }
	for _, c := range []struct {
		series string
		min    float64
		exact  bool
	}{
		{`imprint_logins_total{method="passcode",outcome="success"}`, 1, true},
		{`imprint_logins_total{method="passcode",outcome="failure"}`, 1, false},
		{`imprint_logins_total{method="other",outcome="failure"}`, 1, true},
		{`imprint_login_throttled_total`, 1, false},
		{`imprint_runs_started_total`, 1, true},
		{`imprint_runs_ended_total{state="succeeded"}`, 1, true},
		{`imprint_step_duration_seconds_count{outcome="succeeded"}`, 1, true},
		{`imprint_step_duration_seconds_sum{outcome="succeeded"}`, 42.5, true},
		{`imprint_step_duration_seconds_bucket{outcome="succeeded",le="60"}`, 1, true},
		{`imprint_step_duration_seconds_bucket{outcome="succeeded",le="30"}`, 0, true},
		{`imprint_served_bytes_total{source="content"}`, float64(len("app bytes")), true},
		{`imprint_served_bytes_total{source="boot_http"}`, float64(len(kernel)), false},
		{`imprint_boot_requests_total{kind="ipxe_script"}`, 1, true},
		{`imprint_boot_requests_total{kind="boot_file"}`, 1, true},
	} {
		if _, ok := after[c.series]; !ok {
			t.Errorf("%s: not in the scrape", c.series)
			continue
		}
		d := delta(c.series)
		if (c.exact && d != c.min) || d < c.min {
			t.Errorf("%s moved by %v, want %v%s", c.series, d, c.min, map[bool]string{false: " or more"}[c.exact])
		}
	}
	if got := after["imprint_content_downloads_in_flight"]; got != 0 {
		t.Errorf("downloads in flight after they ended: %v", got)
	}
	for series := range after {
		if strings.Contains(series, "made-up") || strings.Contains(series, run.ID) || strings.Contains(series, devUUID("dev-metrics")) || strings.Contains(series, "127.0.0.1") {
			t.Errorf("a label holds a client's value: %s", series)
		}
	}
}

// Failures of the database and of the content store are counted by
// operation: a store closed under the server, and a content store whose
// upload directory is no longer a directory.
func TestMetricsCountStoreFailures(t *testing.T) {
	ts := startMetricsServer(t)
	before := scrape(t, ts)
	tmp := filepath.Join(ts.dir, "content", "tmp") // where uploads are written first
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	item := createItem(t, ts, deploy.ContentFile, deploy.PurposeApplication)
	if _, resp := upload(t, ts, item.ID, strings.NewReader("bytes"), ""); resp.StatusCode != 500 {
		t.Fatalf("upload into a broken content store: %d", resp.StatusCode)
	}
	ts.Store().Close()
	if resp := ts.do(t, "GET", "/admin/v1/content", nil, nil); resp.StatusCode != 500 {
		t.Fatalf("list with the database closed: %d", resp.StatusCode)
	}
	after := scrape(t, ts)
	for _, series := range []string{`imprint_blob_errors_total{operation="Put"}`, `imprint_db_errors_total{operation="ContentItems"}`} {
		if d := after[series] - before[series]; d < 1 {
			t.Errorf("%s moved by %v, want 1 or more", series, d)
		}
	}
	// A missing record is an answer, not a failure.
	if n := after[`imprint_db_errors_total{operation="ContentItem"}`]; n != 0 {
		t.Errorf("lookups of missing items counted as database errors: %v", n)
	}
}

// promtool, which Prometheus itself uses, accepts a scrape: the format
// and the names (units, _total on counters, no reserved suffixes).
func TestMetricsPassPromtool(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool")
	ts := startMetricsServer(t)
	login(t, ts, "nothing-configured", "dev-p") // some series beyond zero
	text := scrapeText(t, ts)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	for _, name := range []string{"imprint_logins_total", "imprint_step_duration_seconds", "imprint_served_bytes_total", "imprint_boot_requests_total", "go_goroutines"} {
		if !strings.Contains(text, "# TYPE "+name+" ") {
			t.Errorf("%s is not in the scrape", name)
		}
	}
}

// Without --metrics-listen there is no metrics listener, and /metrics is
// not on the API or boot port.
func TestMetricsOffByDefault(t *testing.T) {
	ts := startAuthServer(t)
	if a := ts.MetricsAddr(); a != nil {
		t.Fatalf("metrics listener %v without --metrics-listen", a)
	}
	if r := ts.machine(t, "GET", "/metrics", "", nil, nil); r.StatusCode == 200 {
		t.Fatalf("/metrics answered on the API port")
	}
}

// Every method of deploy.Store and content.Blobs is counted by the
// metered wrappers, not only passed through by embedding: a method added
// to either interface fails here until metered.go counts it.
func TestMeteredWrappersCoverTheirInterfaces(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "metered.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil {
			if st, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
				declared[st.X.(*ast.Ident).Name+"."+fd.Name.Name] = true
			}
		}
	}
	for wrapper, iface := range map[string]reflect.Type{
		"meteredStore": reflect.TypeFor[deploy.Store](),
		"meteredBlobs": reflect.TypeFor[content.Blobs](),
	} {
		for i := range iface.NumMethod() {
			if name := iface.Method(i).Name; !declared[wrapper+"."+name] {
				t.Errorf("%s does not count %s", wrapper, name)
			}
		}
	}
}
