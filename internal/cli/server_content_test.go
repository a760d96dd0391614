package cli

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/server"
)

// TestServerConfigContent covers --content through every source and
// refuses what is not an s3:// URL, and credentials inside the URL.
func TestServerConfigContent(t *testing.T) {
	with := func(c string) server.Config {
		cfg := server.DefaultConfig()
		cfg.Content = c
		return cfg
	}
	set := func(v string) optString { return optString{value: v, set: true} }
	files := map[string]string{"c.conf": "content = s3://file-bucket?endpoint=http://127.0.0.1:8333\n"}
	readFile := func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	env := map[string]string{"IMPRINT_CONFIG": "c.conf", "IMPRINT_CONTENT": "s3://env-bucket/site1?region=eu-west-1"}
	checkServerConfig(t, []serverConfigCase{
		{name: "default is the local directory", want: with("")},
		{name: "file", flags: serverFlags{config: set("c.conf")}, want: with("s3://file-bucket?endpoint=http://127.0.0.1:8333")},
		{name: "environment beats file", env: env, want: with("s3://env-bucket/site1?region=eu-west-1")},
		{name: "flag beats environment", env: env, flags: serverFlags{content: set("s3://flag-bucket")}, want: with("s3://flag-bucket")},
		{name: "a path", flags: serverFlags{content: set("/srv/content")},
			wantErr: `config: content: "/srv/content" is not an s3:// URL`},
		{name: "credentials in the URL", flags: serverFlags{content: set("s3://AKIA:hunter2@bucket")},
			wantErr: `credentials do not belong in the URL`},
		{name: "unknown parameter", flags: serverFlags{content: set("s3://bucket?secret=x")},
			wantErr: `unknown parameter secret`},
		{name: "bad bucket", flags: serverFlags{content: set("s3://B_ad")},
			wantErr: `bucket name`},
	}, readFile)
}

// TestOpenContentCredentials: keys come from the environment or the data
// directory's s3-credentials, which must be private; never from the URL.
func TestOpenContentCredentials(t *testing.T) {
	dir := t.TempDir()
	noEnv := func(string) string { return "" }
	ctx := context.Background()
	u := "s3://bucket?endpoint=http://127.0.0.1:1"
	if _, err := openContent(ctx, u, dir, noEnv); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("no credentials anywhere: %v, want a hint naming AWS_ACCESS_KEY_ID and the file", err)
	}
	p := filepath.Join(dir, "s3-credentials")
	os.WriteFile(p, []byte("[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n"), 0o644)
	if _, err := openContent(ctx, u, dir, noEnv); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("credentials file readable by others: %v, want refused", err)
	}
	os.WriteFile(p, []byte("access_key_id = AK\n"), 0o600)
	os.Chmod(p, 0o600)
	if _, err := openContent(ctx, u, dir, noEnv); err == nil || !strings.Contains(err.Error(), "needs access_key_id and secret_access_key") {
		t.Errorf("credentials file without a secret: %v, want refused", err)
	}
	if _, err := openContent(ctx, u, dir, func(k string) string {
		if k == "AWS_ACCESS_KEY_ID" {
			return "AK"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY is not") {
		t.Errorf("AWS_ACCESS_KEY_ID without AWS_SECRET_ACCESS_KEY: %v, want refused", err)
	}
}
