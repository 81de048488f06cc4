package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

// TestServeUpstream: serve --upstream with a token file and --allow/--deny
// fetches an admitted gated repo the mirror lacks into the mirror; a denied
// one is 404.
func TestServeUpstream(t *testing.T) {
	hub := hubtest.New(t)
	hub.SetToken("hub-token")
	repo := hub.AddRepo("org/gated").AddFile("a.txt", []byte("gated\n")).AddContent("w.bin", hubtest.PseudoRandom(5, 100<<10), true).SetGated(true)
	hub.AddRepo("org/denied").AddFile("a.txt", []byte("denied\n"))
	dst := filepath.Join(t.TempDir(), "mirror")
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("hub-token\n"), 0o600)
	url := startServe(t, "--from", dst, "--upstream", hub.URL(), "--upstream-token-file", tokenFile,
		"--allow", "org/*", "--deny", "org/denied", "--upstream-ttl", "1m")

	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	want, _ := io.ReadAll(io.NewSectionReader(repo.File("w.bin").Content, 0, repo.File("w.bin").Content.Size()))
	if code, body := get("/org/gated/resolve/main/w.bin"); code != http.StatusOK || !bytes.Equal(body, want) {
		t.Errorf("w.bin through the upstream: %d, %d bytes", code, len(body))
	}
	// The file is served as soon as it is in; info waits for the revision.
	if code, body := get("/api/models/org/gated"); code != http.StatusOK || !bytes.Contains(body, []byte(repo.Commit())) {
		t.Errorf("info through the upstream: %d %s", code, body)
	}
	if code, _ := get("/org/denied/resolve/main/a.txt"); code != http.StatusNotFound {
		t.Errorf("a denied repo: %d", code)
	}
	s, err := storage.Open(context.Background(), dst, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m, err := mirror.Resolve(context.Background(), s, "org/gated", "main"); err != nil || m.Commit != repo.Commit() {
		t.Errorf("the mirror after the fetch: %v, %v", m, err)
	}
	if ok, err := mirror.RepoExists(context.Background(), s, "org/denied"); ok || err != nil {
		t.Errorf("the denied repo is in the mirror: %v %v", ok, err)
	}
}

// TestServeUpstreamUsage: the upstream flags need --upstream, and globs
// must parse.
func TestServeUpstreamUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--from", dir, "--allow", "org/*"},
		{"--from", dir, "--upstream-token-file", "x"},
		{"--from", dir, "--upstream", "http://127.0.0.1:1", "--deny", "org/[a-"},
		{"--from", dir, "--upstream", "http://127.0.0.1:1", "--upstream-ttl", "0s"},
		{"--from", dir, "--upstream", "http://127.0.0.1:1", "--upstream-negative-ttl", "0s"},
		{"--from", dir, "--upstream-negative-ttl", "1m"},
		{"--from", dir, "--temp-dir", dir},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), append([]string{"hubmirror", "serve"}, args...), &out, &errb); code != exitUsage {
			t.Errorf("serve %q: exit %d (%s), want usage", args, code, errb.String())
		}
	}
}
