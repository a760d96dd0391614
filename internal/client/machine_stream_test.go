package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func TestOpenContentResumesTransparently(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 256<<10/16)
	for _, cut := range []int{0, 1, len(data) / 3, len(data) - 1} {
		t.Run(fmt.Sprint("cut", cut), func(t *testing.T) {
			fc := &fakeContent{t: t, typ: deploy.ContentFile, data: data, sha: sum(data), cutOnce: cut}
			m, _ := newMachine(t, fc)
			rc, info, err := m.OpenContent(context.Background(), "abc", 1)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes (sha %s), want the %d served (sha %s)", len(got), sum(got), len(data), info.Version.SHA256)
			}
			want := []string{"|"}
			if cut > 0 {
				want = append(want, fmt.Sprintf("bytes=%d-|\"%s\"", cut, fc.sha))
			}
			if diff := cmp.Diff(want, fc.seenRanges()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenContentRefusesChangedContent(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/content/abc/1":
			_ = json.NewEncoder(w).Encode(map[string]any{
				"item":    map[string]any{"id": "abc", "contentItemType": "File"},
				"version": map[string]any{"versionNo": 1, "sha256": sum(data), "contentSize": len(data)},
			})
		case "/v1/content/abc/1/data":
			if r.Header.Get("Range") == "" {
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
				_, _ = w.Write(data[:1000])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			// The ETag no longer matches: the whole (new) object comes back.
			_, _ = w.Write(data)
		}
	})
	m, _ := newMachine(t, h)
	rc, _, err := m.OpenContent(context.Background(), "abc", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	if err == nil || !strings.Contains(err.Error(), "changed while it was streamed") {
		t.Fatalf("err = %v, want a changed-content failure", err)
	}
}

func TestOpenContentRejectsFolder(t *testing.T) {
	fc := &fakeContent{t: t, typ: deploy.ContentFolder, man: &deploy.Manifest{}}
	m, _ := newMachine(t, fc)
	_, _, err := m.OpenContent(context.Background(), "abc", 1)
	if deploy.ErrorKind(err) != deploy.KindInvalid || !strings.Contains(err.Error(), "only File and URL") {
		t.Fatalf("err = %v", err)
	}
}

func TestUploadCapture(t *testing.T) {
	var gotBody []byte
	var gotAuth, gotPath string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotPath = r.Header.Get("Authorization"), r.Method+" "+r.URL.Path
		gotBody, _ = io.ReadAll(r.Body)
		if r.URL.Path != "/v1/content/item-1/versions" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"this session may not upload to that item"}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"versionNo": 3, "sha256": sum(gotBody), "contentSize": len(gotBody)})
	})
	m, _ := newMachine(t, h)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 64; i++ {
			_, _ = pw.Write(bytes.Repeat([]byte{byte(i)}, 64<<10))
		}
		pw.Close()
	}()
	v, err := m.UploadCapture(context.Background(), "item-1", pr)
	if err != nil {
		t.Fatal(err)
	}
	if v.VersionNo != 3 || v.ContentSize != 64*64<<10 || v.SHA256 != sum(gotBody) {
		t.Errorf("version = %+v", v)
	}
	if diff := cmp.Diff([]string{"Bearer tok", "POST /v1/content/item-1/versions"}, []string{gotAuth, gotPath}); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	_, err = m.UploadCapture(context.Background(), "other", strings.NewReader("x"))
	if deploy.ErrorKind(err) != deploy.KindForbidden {
		t.Errorf("upload to a foreign item: err = %v, want forbidden", err)
	}
}
