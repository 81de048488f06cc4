package hubclient_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

// TestFilterMatchesPythonFnmatch checks Filter against the decisions of
// Python's fnmatch in testdata/fnmatch_cases.json (gen_fnmatch.py).
func TestFilterMatchesPythonFnmatch(t *testing.T) {
	data, err := os.ReadFile("testdata/fnmatch_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Pattern, Path string
		Match         bool
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 1000 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		f, err := hubclient.NewFilter([]string{c.Pattern}, nil)
		if err != nil {
			t.Errorf("pattern %q: %v", c.Pattern, err)
			continue
		}
		if got := f.Match(c.Path); got != c.Match {
			t.Errorf("include %q, path %q: %v, Python says %v", c.Pattern, c.Path, got, c.Match)
		}
		f, _ = hubclient.NewFilter(nil, []string{c.Pattern})
		if got := f.Match(c.Path); got != !c.Match {
			t.Errorf("exclude %q, path %q: kept=%v, Python match=%v", c.Pattern, c.Path, got, c.Match)
		}
	}
}

func TestValidateNames(t *testing.T) {
	good := []string{"bert-base-uncased", "org/name", "a.b_c-d/e.f", "Org_1/Model.v2"}
	bad := []string{"", "a/b/c", "a--b", "a..b", "-a", "a-", ".a/b", "org/name.", "a b", "a/ü", strings.Repeat("a", 97)}
	for _, id := range good {
		if err := hubclient.ValidateRepoID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range bad {
		if err := hubclient.ValidateRepoID(id); !errors.Is(err, hubclient.ErrInvalidRepoID) {
			t.Errorf("%q: %v, want ErrInvalidRepoID", id, err)
		}
	}
	for ref, want := range map[string][2]string{
		"org/name":            {"org/name", "main"},
		"org/name@v1.0":       {"org/name", "v1.0"},
		"org/name@refs/pr/12": {"org/name", "refs/pr/12"},
		"gpt2@0123456789abcdef0123456789abcdef01234567": {"gpt2", "0123456789abcdef0123456789abcdef01234567"},
	} {
		id, rev, err := hubclient.ParseRepoRef(ref)
		if err != nil || id != want[0] || rev != want[1] {
			t.Errorf("ParseRepoRef(%q) = %q, %q, %v; want %v", ref, id, rev, err, want)
		}
	}
	for _, ref := range []string{"org/name@", "org/name@../x", "org/name@/abs", "a/b/c@main"} {
		if _, _, err := hubclient.ParseRepoRef(ref); err == nil {
			t.Errorf("ParseRepoRef(%q) accepted", ref)
		}
	}
	if got := hubclient.RepoFolderName("org/name"); got != "models--org--name" {
		t.Errorf("RepoFolderName = %q", got)
	}
}

// TestResolveURLEscaping checks URLs are built as huggingface_hub's
// hf_hub_url builds them (revision quoted with safe="", path with safe="/").
func TestResolveURLEscaping(t *testing.T) {
	c, err := hubclient.New(hubclient.Options{Endpoint: "https://hub.example/"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.ResolveURL("org/name", "refs/pr/1", "dir/a b+c@d.json")
	want := "https://hub.example/org/name/resolve/refs%2Fpr%2F1/dir/a%20b%2Bc%40d.json"
	if got != want {
		t.Errorf("ResolveURL = %s, want %s", got, want)
	}
}

// TestCacheLayoutMatchesHuggingfaceHub pulls the repository described in
// testdata/layout_repo.json and compares the cache, entry by entry, with
// testdata/hf_layout.txt, the layout huggingface_hub writes for it
// (gen_hf_layout.py).
func TestCacheLayoutMatchesHuggingfaceHub(t *testing.T) {
	var spec struct {
		RepoID   string `json:"repo_id"`
		Revision string
		Files    []struct {
			Path   string
			Text   *string
			Repeat string
			Count  int
			LFS    bool
		}
	}
	data, err := os.ReadFile("testdata/layout_repo.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	hub := hubtest.New(t)
	repo := hub.AddRepo(spec.RepoID)
	for _, f := range spec.Files {
		content := strings.Repeat(f.Repeat, f.Count)
		if f.Text != nil {
			content = *f.Text
		}
		repo.AddContent(f.Path, hubtest.Bytes([]byte(content)), f.LFS)
	}
	cache := t.TempDir()
	c := newClient(t, hub, "")
	if _, err := c.Download(context.Background(), spec.RepoID, spec.Revision, hubclient.DownloadOptions{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{}
	fh, err := os.Open("testdata/hf_layout.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if c, ok := strings.CutPrefix(line, "commit "); ok {
			if c != repo.Commit() {
				t.Fatalf("fixture commit %s, hub commit %s: regenerate testdata", c, repo.Commit())
			}
			continue
		}
		want[line] = true
	}
	got := map[string]bool{}
	err = filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == cache {
			return err
		}
		rel, _ := filepath.Rel(cache, p)
		rel = filepath.ToSlash(rel)
		if rel == ".locks" || strings.HasPrefix(rel, ".locks/") {
			return nil // lock files only, left out of the fixture
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel+" -> "+target] = true
		case d.IsDir():
			got[rel+"/ dir"] = true
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			got[rel+" file "+hex.EncodeToString(sum[:])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	for l := range want {
		if !got[l] {
			missing = append(missing, l)
		}
	}
	for l := range got {
		if !want[l] {
			extra = append(extra, l)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, l := range missing {
		t.Errorf("missing: %s", l)
	}
	for _, l := range extra {
		t.Errorf("unexpected: %s", l)
	}
	if len(want) < 20 {
		t.Errorf("fixture has only %d entries", len(want))
	}
}

// TestReusesPythonWrittenCache: blobs and snapshots that huggingface_hub
// wrote (the same layout) are reused without any download.
func TestReusesPythonWrittenCache(t *testing.T) {
	hub := hubtest.New(t)
	repo, files := testRepo(hub, "org/model")
	cache := t.TempDir()
	// Lay the cache out by hand as huggingface_hub would, without the tree
	// listing (older versions do not write it).
	dir := filepath.Join(cache, "models--org--model")
	c := newClient(t, hub, "")
	listing, err := c.ListTree(context.Background(), "org/model", "main")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range listing {
		blob := filepath.Join(dir, "blobs", f.ETag())
		os.MkdirAll(filepath.Dir(blob), 0o755)
		if err := os.WriteFile(blob, files[f.Path], 0o644); err != nil {
			t.Fatal(err)
		}
		ptr := filepath.Join(dir, "snapshots", repo.Commit(), filepath.FromSlash(f.Path))
		os.MkdirAll(filepath.Dir(ptr), 0o755)
		rel, _ := filepath.Rel(filepath.Dir(ptr), blob)
		if err := os.Symlink(rel, ptr); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "refs"), 0o755)
	os.WriteFile(filepath.Join(dir, "refs", "main"), []byte(repo.Commit()), 0o644)
	hub.ResetRequests()
	snap, err := c.Download(context.Background(), "org/model", "main", hubclient.DownloadOptions{CacheDir: cache, VerifyExisting: true})
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, files)
	if n := len(hub.Downloads("")); n != 0 {
		t.Errorf("%d downloads; the cached blobs should have been reused", n)
	}
	// A corrupted cached blob is caught by VerifyExisting and fetched again.
	cfg := filepath.Join(dir, "blobs", gitBlobID(files["config.json"]))
	os.WriteFile(cfg, []byte(`{"model_type":"xxxx"}`), 0o644)
	hub.ResetRequests()
	snap, err = c.Download(context.Background(), "org/model", "main", hubclient.DownloadOptions{CacheDir: cache, VerifyExisting: true})
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, files)
	if n := len(hub.Downloads("config.json")); n != 1 {
		t.Errorf("corrupted blob downloaded %d times, want 1", n)
	}
}

func gitBlobID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// TestHuggingfaceHubCrossCheck runs the real huggingface_hub against the
// test hub, when python3 can import it (Debian does not package it: run
// with PYTHONPATH=/path/to/huggingface_hub/src). It checks that
// snapshot_download writes the layout hubmirror writes, that
// huggingface_hub reads hubmirror's cache offline (scan_cache_dir,
// local_files_only, try_to_load_from_cache), and that hubmirror reuses
// huggingface_hub's cache without downloading anything.
func TestHuggingfaceHubCrossCheck(t *testing.T) {
	python := ""
	for _, p := range []string{os.Getenv("HUBMIRROR_PYTHON"), "python3", "/usr/bin/python3"} {
		if p != "" && exec.Command(p, "-c", "from huggingface_hub import snapshot_download, scan_cache_dir").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		t.Skip("huggingface_hub is not importable by python3 (set PYTHONPATH to its src/ to run this check)")
	}
	var spec struct {
		RepoID string `json:"repo_id"`
		Files  []struct {
			Path   string
			Text   *string
			Repeat string
			Count  int
			LFS    bool
		}
	}
	data, err := os.ReadFile("testdata/layout_repo.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	hub := hubtest.New(t)
	repo := hub.AddRepo(spec.RepoID)
	for _, f := range spec.Files {
		content := strings.Repeat(f.Repeat, f.Count)
		if f.Text != nil {
			content = *f.Text
		}
		repo.AddContent(f.Path, hubtest.Bytes([]byte(content)), f.LFS)
	}
	dir := t.TempDir()
	pyCache, goCache := filepath.Join(dir, "py"), filepath.Join(dir, "go")
	script, _ := filepath.Abs("testdata/hf_check.py")
	py := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(python, append([]string{script}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HF_ENDPOINT="+hub.URL(), "HF_HOME="+filepath.Join(dir, "home"),
			"HF_HUB_DISABLE_PROGRESS_BARS=1", "HF_HUB_DISABLE_TELEMETRY=1", "HF_TOKEN=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("hf_check.py %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	py("download", pyCache, spec.RepoID)
	c := newClient(t, hub, "")
	if _, err := c.Download(context.Background(), spec.RepoID, "main", hubclient.DownloadOptions{CacheDir: goCache}); err != nil {
		t.Fatal(err)
	}
	if a, b := py("list", pyCache), py("list", goCache); a != b {
		t.Errorf("layouts differ:\nhuggingface_hub:\n%s\nhubmirror:\n%s", a, b)
	}
	if out := py("read", goCache, spec.RepoID); !strings.HasPrefix(out, "ok ") {
		t.Errorf("huggingface_hub reading hubmirror's cache: %s", out)
	}
	hub.ResetRequests()
	snap, err := c.Download(context.Background(), spec.RepoID, "main", hubclient.DownloadOptions{CacheDir: pyCache})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(hub.Downloads("")); n != 0 || len(snap.Files) != len(spec.Files) {
		t.Errorf("pull into huggingface_hub's cache: %d downloads, %d files", n, len(snap.Files))
	}
}
