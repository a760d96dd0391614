package s3store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// CredentialsFile is the file in the data directory the S3 credentials are
// read from when the environment has none.
const CredentialsFile = "s3-credentials"

// Config says which bucket to use and how to reach it.
type Config struct {
	Bucket string
	// Prefix is prepended to every key ("" or ending in "/"), so one
	// bucket can hold several sites' stores.
	Prefix string
	// Endpoint is host[:port] of the S3 service; Secure says HTTPS.
	Endpoint string
	Secure   bool
	Region   string

	AccessKey, SecretKey, SessionToken string
}

// IsURL reports whether s names an S3 content store (s3://…).
func IsURL(s string) bool { return strings.HasPrefix(strings.ToLower(s), "s3://") }

// ParseURL reads s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION. The
// endpoint is an http:// or https:// URL (a bare host means https); it
// defaults to AWS (https://s3.amazonaws.com). Credentials are never taken
// from the URL: see Credentials.
func ParseURL(s string) (Config, error) {
	bad := func(why string) error {
		return deploy.Errorf(deploy.KindInvalid, "content store URL %q: %s", Redact(s), why)
	}
	u, err := url.Parse(s)
	if err != nil || !strings.EqualFold(u.Scheme, "s3") {
		return Config{}, bad("not an s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION URL")
	}
	if u.User != nil {
		return Config{}, bad("credentials do not belong in the URL (it is logged and shown in process lists): " +
			"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or write them to DATA/" + CredentialsFile)
	}
	cfg := Config{Bucket: u.Host, Endpoint: "s3.amazonaws.com", Secure: true, Region: "us-east-1"}
	if err := checkBucket(cfg.Bucket); err != nil {
		return Config{}, bad(err.Error())
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if strings.Contains(p, "//") || strings.Contains(p, "..") {
			return Config{}, bad("the key prefix must not contain empty or \"..\" elements")
		}
		cfg.Prefix = p + "/"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, bad("bad query: " + err.Error())
	}
	for k, v := range q {
		if len(v) != 1 {
			return Config{}, bad(k + " is given " + fmt.Sprint(len(v)) + " times")
		}
		switch k {
		case "endpoint":
			if err := cfg.setEndpoint(v[0]); err != nil {
				return Config{}, bad(err.Error())
			}
		case "region":
			cfg.Region = v[0]
		default:
			return Config{}, bad("unknown parameter " + k + " (known: endpoint, region)")
		}
	}
	return cfg, nil
}

func (c *Config) setEndpoint(e string) error {
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" {
		return fmt.Errorf("endpoint %q is not a URL", e)
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		c.Secure = false
	case "https":
		c.Secure = true
	default:
		return fmt.Errorf("endpoint %q: scheme must be http or https", e)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("endpoint %q: only scheme://host[:port]", e)
	}
	c.Endpoint = u.Host
	return nil
}

// checkBucket applies S3's bucket naming rules (3–63 of a-z 0-9 . -).
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("bucket name must be 3 to 63 characters")
	}
	for _, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '.' {
			return fmt.Errorf("bucket name %q: only lowercase letters, digits, '.' and '-'", b)
		}
	}
	return nil
}

// Redact returns s without any userinfo, for logs and errors.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "s3://…"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}

// Credentials fills cfg's keys from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// (and AWS_SESSION_TOKEN) if set, otherwise from dataDir/s3-credentials:
// "key = value" lines (access_key_id, secret_access_key, session_token;
// an aws_ prefix and [section] lines are accepted, so an AWS credentials
// file's default profile works), readable by its owner only.
func Credentials(cfg *Config, dataDir string, getenv func(string) string) error {
	if id := getenv("AWS_ACCESS_KEY_ID"); id != "" {
		cfg.AccessKey, cfg.SecretKey, cfg.SessionToken = id, getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN")
		if cfg.SecretKey == "" {
			return deploy.Errorf(deploy.KindInvalid, "s3 credentials: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
		}
		return nil
	}
	p := filepath.Join(dataDir, CredentialsFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return deploy.Errorf(deploy.KindInvalid, "s3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or write %s", p)
	}
	if err != nil {
		return fmt.Errorf("s3 credentials: %w", err)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return deploy.Errorf(deploy.KindInvalid, "s3 credentials: %s is readable by other users (mode %v): chmod 600 it", p, fi.Mode().Perm())
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") || strings.HasPrefix(t, "[") {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return deploy.Errorf(deploy.KindInvalid, "s3 credentials: %s line %d: not key = value", p, line)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch strings.TrimPrefix(k, "aws_") {
		case "access_key_id":
			cfg.AccessKey = v
		case "secret_access_key":
			cfg.SecretKey = v
		case "session_token":
			cfg.SessionToken = v
		default:
			return deploy.Errorf(deploy.KindInvalid, "s3 credentials: %s line %d: unknown key %q", p, line, k)
		}
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return deploy.Errorf(deploy.KindInvalid, "s3 credentials: %s needs access_key_id and secret_access_key", p)
	}
	return nil
}
