//go:build s3

package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/content/s3store"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// BenchmarkDownloadS3 downloads a 64 MiB File version through the server
// (admin socket, the same serveVersion and hash check as the machine
// API) from the local content directory and from an S3 bucket on a
// SeaweedFS server on loopback, and prints the S3/local throughput ratio:
//
//	go test -run X -bench BenchmarkDownloadS3 -benchtime 10x -count 3 ./internal/server/
func BenchmarkDownloadS3(b *testing.B) {
	data := make([]byte, 64<<20)
	rand.Read(data)
	rate := map[string]float64{}
	for _, name := range []string{"local", "s3"} {
		b.Run(name, func(b *testing.B) {
			var deps server.Deps
			if name == "s3" {
				deps.Blobs = weed.Store(b, s3store.Options{})
			}
			ts := startServerDeps(b, b.TempDir(), nil, deps)
			cr, err := ts.admin.Post("http://imprint/admin/v1/content", "application/json",
				strings.NewReader(`{"name":"bench","contentItemType":"File","contentItemPurpose":"OperatingSystem"}`))
			if err != nil || cr.StatusCode != http.StatusCreated {
				b.Fatalf("create item: %v %v", cr, err)
			}
			var item deploy.ContentItem
			json.NewDecoder(cr.Body).Decode(&item)
			cr.Body.Close()
			id := item.ID
			req, _ := http.NewRequest("POST", "http://imprint/admin/v1/content/"+id+"/versions", bytes.NewReader(data))
			resp, err := ts.admin.Do(req)
			if err != nil || resp.StatusCode != http.StatusCreated {
				b.Fatalf("upload: %v %v", resp, err)
			}
			resp.Body.Close()
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				resp, err := ts.admin.Get("http://imprint/admin/v1/content/" + id + "/versions/1/data")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || n != int64(len(data)) {
					b.Fatalf("download: %d bytes, %v", n, err)
				}
			}
			rate[name] = float64(b.N) * float64(len(data)) / time.Since(start).Seconds() / 1e6
		})
	}
	if rate["local"] > 0 && rate["s3"] > 0 {
		fmt.Printf("download through the server: local %.0f MB/s, s3 %.0f MB/s, s3/local ratio %.2f\n",
			rate["local"], rate["s3"], rate["s3"]/rate["local"])
	}
}
