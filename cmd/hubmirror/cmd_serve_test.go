package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeCommand(t *testing.T) {
	dir, files := pushModelDir(t, "tiny", 3<<20)
	dst := filepath.Join(t.TempDir(), "mirror")
	if _, stderr, code := pushJSON(t, dir, dst, "--repo", "org/tiny"); code != 0 {
		t.Fatalf("push: %s", stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"hubmirror", "serve", "--from", "file://" + dst, "--addr", "127.0.0.1:0", "--token", "tok"}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no URL on stdout: %v; stderr: %s", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	base := strings.TrimSpace(line)
	get := func(path, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	if resp, _ := get("/api/models/org/tiny", ""); resp.StatusCode != 401 {
		t.Errorf("without the token: %d", resp.StatusCode)
	}
	resp, body := get("/api/models/org/tiny", "tok")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"sha"`) {
		t.Errorf("model info: %d %s", resp.StatusCode, body)
	}
	resp, body = get("/org/tiny/resolve/main/model.safetensors", "tok")
	if resp.StatusCode != 200 || !bytes.Equal(body, files["model.safetensors"]) || resp.Header.Get("X-Repo-Commit") == "" {
		t.Errorf("file: %d, %d bytes", resp.StatusCode, len(body))
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after cancellation")
	}
	log := stderr.String()
	if !strings.Contains(log, "path=/org/tiny/resolve/main/model.safetensors") || !strings.Contains(log, "status=401") {
		t.Errorf("access log lacks the requests:\n%s", log)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"hubmirror", "serve", "--from", filepath.Join(t.TempDir(), "nope")}, &out, &errb); code == 0 {
		t.Error("serve of a missing directory succeeded")
	}
	if code := run(context.Background(), []string{"hubmirror", "serve"}, &out, &errb); code != exitUsage {
		t.Errorf("serve without --from: exit %d", code)
	}
}
