package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func (ts *testServer) bootGet(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + ts.BootAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func TestBootChainCarriesServerAndPin(t *testing.T) {
	ts := startServer(t, t.TempDir())
	if s := ts.bootGet(t, "/boot.ipxe"); !strings.HasPrefix(s, "#!ipxe") || !strings.Contains(s, "/ipxe?") {
		t.Fatalf("stage one:\n%s", s)
	}
	s := ts.bootGet(t, "/ipxe?mac=52-54-00-12-34-56&uuid=&arch=x86_64&platform=efi")
	for _, want := range []string{"imprint.server=" + ts.PublicURL(), "imprint.ca=" + ts.CAFingerprint(), "console=ttyS0,115200"} {
		if !strings.Contains(s, want) {
			t.Errorf("stage two lacks %q:\n%s", want, s)
		}
	}
	if ca := ts.bootGet(t, "/ca.crt"); !strings.Contains(ca, "BEGIN CERTIFICATE") {
		t.Errorf("ca.crt = %q", ca)
	}
}

func TestAdminInfoForBootMedia(t *testing.T) {
	ts := startServer(t, t.TempDir())
	var info struct{ PublicURL, BootURL, CASHA256 string }
	ts.do(t, "GET", "/admin/v1/info", nil, &info)
	if info.PublicURL != ts.PublicURL() || info.CASHA256 != ts.CAFingerprint() || !strings.HasPrefix(info.BootURL, "http://") {
		t.Fatalf("info = %+v", info)
	}
}
