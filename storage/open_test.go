package storage

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestOpenURLs(t *testing.T) {
	dir := t.TempDir()
	for _, u := range []string{"file://" + dir + "/a", dir + "/b", "rel-" + filepath.Base(dir)} {
		s, err := Open(context.Background(), u, OpenOptions{Create: true})
		if err != nil {
			t.Errorf("Open(%q): %v", u, err)
			continue
		}
		if s.Location()[:8] != "file:///" {
			t.Errorf("Open(%q).Location() = %q", u, s.Location())
		}
		s.Close()
	}
	for _, u := range []string{"", "ftp://x/y", "s3://", "s3:///prefix", "s3://b/p?endpoint=x", "file://host/x", "file://"} {
		if _, err := Open(context.Background(), u, OpenOptions{}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Open(%q) = %v, want ErrInvalidArgument", u, err)
		}
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "missing"), OpenOptions{}); err == nil {
		t.Error("Open of a missing directory without Create succeeded")
	}
}

func TestParseEndpoint(t *testing.T) {
	cases := []struct {
		in             string
		host           string
		secure, custom bool
	}{
		{"", "s3.amazonaws.com", true, false},
		{"http://127.0.0.1:7070", "127.0.0.1:7070", false, true},
		{"https://minio.example:9000/", "minio.example:9000", true, true},
		{"minio.example:9000", "minio.example:9000", true, true},
		{"https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", true, false},
	}
	for _, c := range cases {
		host, secure, custom, err := parseEndpoint(c.in)
		if err != nil || host != c.host || secure != c.secure || custom != c.custom {
			t.Errorf("parseEndpoint(%q) = %q %v %v %v", c.in, host, secure, custom, err)
		}
	}
	for _, bad := range []string{"ftp://x", "http://x/path"} {
		if _, _, _, err := parseEndpoint(bad); err == nil {
			t.Errorf("parseEndpoint(%q) accepted", bad)
		}
	}
}

func TestS3ConfigFromEnv(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://global:1")
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://s3only:2")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "eu-west-3")
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "tok")
	c := S3ConfigFromEnv("b", "p")
	if c.Endpoint != "http://s3only:2" || c.Region != "eu-west-3" || c.AccessKey != "id" || c.SecretKey != "secret" || c.SessionToken != "tok" {
		t.Errorf("S3ConfigFromEnv = %+v", c)
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	if c := S3ConfigFromEnv("b", ""); c.Endpoint != "http://global:1" {
		t.Errorf("AWS_ENDPOINT_URL fallback: %q", c.Endpoint)
	}
}
