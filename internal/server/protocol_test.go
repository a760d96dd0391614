package server_test

import (
	"net/http"
	"testing"
)

// TestAPIServesHTTP1Only: a client that offers HTTP/2 gets HTTP/1.1 (content
// is sent faster over it; see docs/performance.md).
func TestAPIServesHTTP1Only(t *testing.T) {
	ts := startServer(t, t.TempDir())
	tr := ts.api.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = true
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	tr.Protocols.SetHTTP2(true)
	resp, err := (&http.Client{Transport: tr}).Get(ts.apiURL("/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.NegotiatedProtocol == "h2" {
		t.Errorf("GET /healthz offering h2: status %d, %s, ALPN %q; want 200 over HTTP/1.1", resp.StatusCode, resp.Proto, resp.TLS.NegotiatedProtocol)
	}
}
