package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
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

// startServe runs hubmirror serve on a free port until the test ends and
// returns its URL.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"hubmirror", "serve", "--addr", "127.0.0.1:0", "--quiet"}, args...), pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve printed no URL: %v; stderr: %s", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return strings.TrimSpace(line)
}

// cacheTree lists a Hugging Face cache: directories, links with their
// targets, files with their sha256; .locks left out.
func cacheTree(t *testing.T, root string) string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case rel == ".":
		case rel == ".locks":
			return filepath.SkipDir
		case d.Type()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			data, _ := os.ReadFile(p)
			out = append(out, rel+" "+storage.SHA256Hex(data))
		}
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestServeEndToEnd mirrors a hub repo with pull --to (two revisions and a
// commit), pushes a variant, serves the mirror with hubmirror serve, and
// pulls every revision back with hubmirror pull: the caches are identical
// to those pulled from the hub, file for file and link for link, and so are
// local dirs. With huggingface_hub importable (PYTHONPATH), the real Python
// client downloads the same revisions from the served mirror too.
func TestServeEndToEnd(t *testing.T) {
	hub := hubtest.New(t)
	repo := pullToRepo(hub, 3<<20)
	pullEnv(t, hub)
	dst := filepath.Join(t.TempDir(), "mirror")
	var v1 string
	for _, rev := range []string{"main", "v1"} {
		code, out, errOut := runPullCLI("pull", "org/model@"+rev, "--to", dst)
		if code != 0 {
			t.Fatalf("pull --to %s: %s", rev, errOut)
		}
		v1 = outputLastLine(out)[strings.LastIndex(outputLastLine(out), "@")+1:]
	}
	qdir, qfiles := pushModelDir(t, "q", 4096)
	report := filepath.Join(t.TempDir(), "report.json")
	os.WriteFile(report, []byte(`{"passed": true}`), 0o644)
	if _, stderr, code := pushJSON(t, qdir, dst, "--repo", "org/model", "--variant", "int8", "--report", report); code != 0 {
		t.Fatalf("variant push: %s", stderr)
	}
	url := startServe(t, "--from", dst)

	for _, rev := range []string{"main", "v1", v1} {
		fromHub, fromMirror := t.TempDir(), t.TempDir()
		if code, _, errOut := runPullCLI("pull", "org/model@"+rev, "--cache-dir", fromHub); code != 0 {
			t.Fatalf("pull %s from the hub: %s", rev, errOut)
		}
		code, out, errOut := runPullCLI("pull", "org/model@"+rev, "--cache-dir", fromMirror, "--endpoint", url)
		if code != 0 {
			t.Fatalf("pull %s from the mirror: %s", rev, errOut)
		}
		if snap := outputLastLine(out); !strings.HasPrefix(snap, fromMirror) || filepath.Base(snap) == repo.Commit() && rev != "main" {
			t.Errorf("pull %s from the mirror: snapshot %s", rev, snap)
		}
		if a, b := cacheTree(t, fromHub), cacheTree(t, fromMirror); a != b {
			t.Errorf("%s: caches differ\nfrom the hub:\n%s\nfrom the mirror:\n%s", rev, a, b)
		}
		localHub, localMirror := filepath.Join(t.TempDir(), "l"), filepath.Join(t.TempDir(), "l")
		runPullCLI("pull", "org/model@"+rev, "--local-dir", localHub, "--cache-dir", t.TempDir())
		if code, _, errOut := runPullCLI("pull", "org/model@"+rev, "--local-dir", localMirror, "--cache-dir", t.TempDir(), "--endpoint", url); code != 0 {
			t.Fatalf("pull %s --local-dir from the mirror: %s", rev, errOut)
		}
		os.RemoveAll(filepath.Join(localHub, ".cache"))
		os.RemoveAll(filepath.Join(localMirror, ".cache"))
		if a, b := cacheTree(t, localHub), cacheTree(t, localMirror); a != b || a == "" {
			t.Errorf("%s: local dirs differ\nfrom the hub:\n%s\nfrom the mirror:\n%s", rev, a, b)
		}
	}
	cache := t.TempDir()
	code, out, errOut := runPullCLI("pull", "org/model@int8", "--cache-dir", cache, "--endpoint", url)
	if code != 0 {
		t.Fatalf("pull int8: %s", errOut)
	}
	snap := outputLastLine(out)
	for p, data := range qfiles {
		if got, err := os.ReadFile(filepath.Join(snap, p)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("variant %s: %v", p, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(snap, "validation.json")); string(got) != `{"passed": true}` {
		t.Errorf("variant report %q", got)
	}

	python := ""
	for _, p := range []string{os.Getenv("HUBMIRROR_PYTHON"), "python3", "/usr/bin/python3"} {
		if p != "" && exec.Command(p, "-c", "from huggingface_hub import snapshot_download").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		t.Log("huggingface_hub is not importable by python3: the Python client part is skipped (set PYTHONPATH to its src/)")
		return
	}
	script, _ := filepath.Abs("../../mirror/testdata/hf_serve_check.py")
	work := t.TempDir()
	cmd := exec.Command(python, script, work)
	cmd.Dir = work
	cmd.Stdin = strings.NewReader(`[{"repo": "org/model", "revision": null, "file": "model.safetensors"},
		{"repo": "org/model", "revision": "v1", "file": "config.json"},
		{"repo": "org/model", "revision": "int8", "file": "validation.json"}]`)
	cmd.Env = append(os.Environ(), "HF_ENDPOINT="+url, "HF_HOME="+filepath.Join(work, "home"), "HF_HUB_DISABLE_PROGRESS_BARS=1", "HF_TOKEN=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pyOut, err := cmd.Output()
	if err != nil {
		t.Fatalf("hf_serve_check.py: %v\n%s", err, stderr.String())
	}
	var results []struct {
		SnapshotCommit string            `json:"snapshot_commit"`
		Snapshot       map[string]string `json:"snapshot"`
		LocalDir       map[string]string `json:"local_dir"`
	}
	if err := json.Unmarshal(pyOut, &results); err != nil || len(results) != 3 {
		t.Fatalf("hf_serve_check.py output %s: %v", pyOut, err)
	}
	s := openMirror(t, dst)
	for i, rev := range []string{"main", "v1", "int8"} {
		m, err := mirror.Resolve(context.Background(), s, "org/model", rev)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, e := range m.Files {
			want[e.Path] = e.SHA256
		}
		r := results[i]
		if r.SnapshotCommit != m.Commit || fmt.Sprint(r.Snapshot) != fmt.Sprint(want) || fmt.Sprint(r.LocalDir) != fmt.Sprint(want) {
			t.Errorf("huggingface_hub, revision %s: %+v, want commit %s files %v", rev, r, m.Commit, want)
		}
	}
}

// serve --json prints the URL as its first line as well, then one JSON
// line; an address in use is an error (1), not a usage error (13, 15).
func TestServeJSONAndAddressInUse(t *testing.T) {
	dir, _ := pushModelDir(t, "tiny", 1<<10)
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
		done <- run(ctx, []string{"hubmirror", "--json", "serve", "--from", dst, "--addr", "127.0.0.1:0", "--quiet"}, pw, &stderr)
		pw.Close()
	}()
	r := bufio.NewReader(pr)
	first, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("no first line: %v; stderr: %s", err, stderr.String())
	}
	url := strings.TrimSpace(first)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("first line %q is not the URL", first)
	}
	second, err := r.ReadString('\n')
	var doc struct {
		URL   string
		Repos []string
	}
	if err != nil || json.Unmarshal([]byte(second), &doc) != nil || doc.URL != url || len(doc.Repos) != 1 {
		t.Errorf("second line %q (%v): want a JSON document with the URL and the repos", second, err)
	}
	go io.Copy(io.Discard, r)

	// The same address again: in use.
	out, errOut, code := runCLI(t, "serve", "--from", dst, "--addr", strings.TrimPrefix(url, "http://"), "--json")
	if code != exitError || !strings.Contains(errOut, "listening on") {
		t.Errorf("address in use: exit %d, %q; want %d", code, errOut, exitError)
	}
	jsonFailure(t, out, exitError)
	if _, errOut, code := runCLI(t, "serve", "--from", dst, "--addr", "nonsense"); code != exitUsage || !strings.Contains(errOut, "--addr") {
		t.Errorf("--addr nonsense: exit %d, %q; want %d", code, errOut, exitUsage)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}
