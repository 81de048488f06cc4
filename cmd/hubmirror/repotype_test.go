package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/mirror"
)

// datasetFiles are n small files in a few nested directories, as datasets
// lay out their shards, plus a README.
func datasetFiles(n int) map[string][]byte {
	files := map[string][]byte{"README.md": []byte("---\nlicense: mit\n---\n")}
	for i := range n {
		split := []string{"train", "test", "validation"}[i%3]
		p := fmt.Sprintf("data/%s/part-%02d/%05d.jsonl", split, i/500, i)
		files[p] = []byte(fmt.Sprintf("{\"id\": %d, \"text\": %q}\n", i, strings.Repeat("x", i%97)))
	}
	return files
}

// memoryTempDir makes t.TempDir (and every temporary file) use a memory
// file system where the machine has one (/dev/shm): a test that writes
// thousands of small files then measures the code, not the disk's fsync.
func memoryTempDir(t *testing.T) {
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		return
	}
	dir, err := os.MkdirTemp("/dev/shm", "hubmirror-test-")
	if err != nil {
		return
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("TMPDIR", dir)
}

// listTreeHTTP follows the pages of a tree listing and returns the files
// by path with their oid, and the number of pages.
func listTreeHTTP(t *testing.T, first string) (map[string]hubproto.TreeEntry, int) {
	t.Helper()
	linkRe := regexp.MustCompile(`<([^>]*)>\s*;\s*rel="next"`)
	files := map[string]hubproto.TreeEntry{}
	pages := 0
	for next := first; next != ""; pages++ {
		if pages > 10000 {
			t.Fatalf("%s: the pagination does not end", first)
		}
		resp, err := http.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		var page []hubproto.TreeEntry
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("GET %s: %d %v", next, resp.StatusCode, err)
		}
		for _, e := range page {
			if e.Type == hubproto.TypeFile {
				if _, dup := files[e.Path]; dup {
					t.Errorf("%s listed twice", e.Path)
				}
				files[e.Path] = e
			}
		}
		next = ""
		if m := linkRe.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			next = m[1]
		}
	}
	return files, pages
}

// TestDatasetThroughMirror takes a dataset of thousands of small files,
// named as the Hub's URLs name it and with --repo-type, from the test hub
// through pull (cache layout datasets--org--name), push from the cache,
// pull --to, ls, and serve: the served tree, paged 97 entries at a time,
// lists every file with its oid, and a pull from the served mirror
// delivers every file byte for byte. A model of the same name is a repo of
// its own throughout; weights commands and variants refuse the dataset.
func TestDatasetThroughMirror(t *testing.T) {
	memoryTempDir(t)
	hub := hubtest.New(t)
	hub.PageSize = 1000
	files := datasetFiles(2000)
	ds := hub.AddRepo("datasets/org/big").AddFiles(files)
	hub.AddRepo("org/big").AddFile("config.json", []byte(`{"model": true}`))
	pullEnv(t, hub)
	cache := filepath.Join(t.TempDir(), "cache")
	t.Setenv("HF_HUB_CACHE", cache)

	code, out, errOut := runPullCLI("pull", "datasets/org/big")
	if code != 0 {
		t.Fatalf("pull datasets/org/big: %s", errOut)
	}
	snap := outputLastLine(out)
	if want := filepath.Join(cache, "datasets--org--big", "snapshots", ds.Commit()); snap != want {
		t.Fatalf("snapshot %s, want %s", snap, want)
	}
	for p, data := range files {
		if got, err := os.ReadFile(filepath.Join(snap, p)); err != nil || string(got) != string(data) {
			t.Fatalf("%s in the snapshot: %v", p, err)
		}
	}
	// --repo-type names the same repo; a contradicting one is refused.
	if code, out, errOut := runPullCLI("pull", "org/big", "--repo-type", "dataset"); code != 0 || outputLastLine(out) != snap {
		t.Errorf("pull org/big --repo-type dataset: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runPullCLI("pull", "datasets/org/big", "--repo-type", "space"); code != 2 || !strings.Contains(errOut, "is a dataset") {
		t.Errorf("pull datasets/org/big --repo-type space: %d %s", code, errOut)
	}
	if code, _, errOut := runPullCLI("pull", "org/big", "--repo-type", "gguf"); code != 2 || !strings.Contains(errOut, "model, dataset or space") {
		t.Errorf("pull --repo-type gguf: %d %s", code, errOut)
	}
	// The model of the same name has its own folder.
	if code, out, errOut := runPullCLI("pull", "org/big"); code != 0 || filepath.Dir(outputLastLine(out)) != filepath.Join(cache, "models--org--big", "snapshots") {
		t.Errorf("pull org/big: %d %s %s", code, out, errOut)
	}

	// push from the cache, and pull --to: the same commit, the dataset's.
	dst := filepath.Join(t.TempDir(), "mirror")
	rep, stderr, code := pushJSON(t, "org/big", dst, "--repo-type", "dataset")
	if code != 0 || rep.Repo != "datasets/org/big" || rep.Commit != ds.Commit() || rep.Files != len(files) {
		t.Fatalf("push org/big --repo-type dataset: %d %+v %s", code, rep, stderr)
	}
	if _, stderr, code := pushJSON(t, "org/big", dst); code != 0 {
		t.Fatalf("push of the model org/big: %s", stderr)
	}
	dst2 := filepath.Join(t.TempDir(), "mirror2")
	if code, out, errOut := runPullCLI("pull", "--repo-type", "dataset", "org/big", "--to", dst2); code != 0 || !strings.HasSuffix(outputLastLine(out), "#datasets/org/big@"+ds.Commit()) {
		t.Fatalf("pull --to: %d %s %s", code, out, errOut)
	}
	s := openMirror(t, dst)
	for _, key := range []string{mirror.ManifestKey("datasets/org/big", ds.Commit()), "repos/datasets--org--big/refs/main"} {
		if !strings.HasPrefix(key, "repos/datasets--org--big/") {
			t.Errorf("key %s is not under repos/datasets--org--big/", key)
		}
		if _, err := s.Stat(t.Context(), key); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	stdout, stderr, code := runCLI(t, "ls", dst)
	if code != 0 || !strings.Contains(stdout, "datasets/org/big (dataset): 1 commits") || !strings.Contains(stdout, "org/big (model): 1 commits") {
		t.Errorf("ls: %d %s %s", code, stdout, stderr)
	}
	stdout, _, code = runCLI(t, "ls", dst, "org/big", "--repo-type", "dataset", "--json")
	var info mirror.RepoInfo
	if code != 0 || json.Unmarshal([]byte(stdout), &info) != nil || info.Type != "dataset" || info.Repo != "datasets/org/big" || info.Commits[0].Files != len(files) {
		t.Errorf("ls REPO --repo-type dataset --json: %d %s", code, stdout)
	}

	// Weights commands and variants refuse a dataset.
	for _, args := range [][]string{
		{"inspect", "datasets/org/big"},
		{"quantize", "datasets/org/big", filepath.Join(t.TempDir(), "q"), "--scheme", "int8"},
		{"forward", "file://" + dst + "#datasets/org/big", "--ids", "1,2"},
		{"mirror", "org/big", "--repo-type", "dataset", "--to", dst, "--quantize", "int8"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, "is a dataset") {
			t.Errorf("%v: exit %d, %s; want 2 and that it is a dataset", args, code, stderr)
		}
	}

	// serve: the dataset's tree, paged.
	srv := startServe(t, "--from", dst)
	got, pages := listTreeHTTP(t, srv+"/api/datasets/org/big/tree/main?recursive=true&limit=97")
	if len(got) != len(files) || pages < (len(files)+96)/97 {
		t.Errorf("served tree: %d files in %d pages, want %d in pages of 97", len(got), pages, len(files))
	}
	for p, data := range files {
		if e, ok := got[p]; !ok || e.Size != int64(len(data)) || e.OID != ds.File(p).GitSHA1 {
			t.Fatalf("served tree: %s: %+v, want size %d oid %s", p, e, len(data), ds.File(p).GitSHA1)
		}
	}
	sub, _ := listTreeHTTP(t, srv+"/api/datasets/org/big/tree/main/data%2Ftest?recursive=true&limit=50")
	want := 0
	for p := range files {
		if strings.HasPrefix(p, "data/test/") {
			want++
		}
	}
	if len(sub) != want {
		t.Errorf("served tree of data/test: %d files, want %d", len(sub), want)
	}
	if resp, err := http.Get(srv + "/api/models/org/big/tree/main/data"); err != nil || resp.StatusCode != 404 {
		t.Errorf("the model's tree has no data/: %v %v", resp.Status, err)
	}
	form := url.Values{"paths": {"README.md", "data/train", "nope"}}
	resp, err := http.PostForm(srv+"/api/datasets/org/big/paths-info/main", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var infos []hubproto.TreeEntry
	if json.Unmarshal(body, &infos) != nil || len(infos) != 2 || infos[0].Path != "README.md" || infos[1].Type != hubproto.TypeDirectory {
		t.Errorf("paths-info: %s", body)
	}

	// Each type's listing holds its own repos.
	for api, want := range map[string]string{"/api/datasets": `[{"id":"org/big","private":false}]`, "/api/models": `[{"id":"org/big","modelId":"org/big","private":false}]`} {
		resp, err := http.Get(srv + api)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Errorf("GET %s: %s, want %s", api, body, want)
		}
	}

	// A pull from the served mirror gets every file, as from the hub.
	fromMirror := t.TempDir()
	code, _, errOut = runPullCLI("pull", "datasets/org/big", "--cache-dir", fromMirror, "--endpoint", srv)
	if code != 0 {
		t.Fatalf("pull from the mirror: %s", errOut)
	}
	if a, b := cacheTree(t, filepath.Join(cache, "datasets--org--big")), cacheTree(t, filepath.Join(fromMirror, "datasets--org--big")); a != b {
		t.Errorf("the caches from the hub and from the mirror differ")
	}
}

// TestMirrorDataset: mirror takes a dataset from the Hub (streamed) and
// from the cache (--offline); push takes a directory as a dataset, whose
// files are data: a .safetensors file that does not parse is pushed as it
// is, where a model's is refused.
func TestMirrorDataset(t *testing.T) {
	hub := hubtest.New(t)
	ds := hub.AddRepo("datasets/org/small").AddFiles(map[string][]byte{
		"README.md":        []byte("# small\n"),
		"data/weights.bin": []byte("not a pickle at all"),
		"data/train.csv":   []byte("a,b\n1,2\n"),
	})
	pullEnv(t, hub)
	to := filepath.Join(t.TempDir(), "mirror")
	for _, args := range [][]string{
		{"mirror", "datasets/org/small", "--to", to, "--json"},
		{"mirror", "org/small", "--repo-type", "dataset", "--to", to + "2", "--json", "--offline"},
	} {
		if args[len(args)-1] == "--offline" {
			if code, _, errOut := runPullCLI("pull", "datasets/org/small"); code != 0 {
				t.Fatalf("pull: %s", errOut)
			}
		}
		out, stderr, code := runCLI(t, args...)
		var rep struct {
			Source struct {
				Repo, Commit string
				Files        int
			} `json:"source"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Source.Repo != "datasets/org/small" || rep.Source.Commit != ds.Commit() || rep.Source.Files != 3 {
			t.Errorf("%v: exit %d, %s %s", args, code, out, stderr)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("not safetensors"), 0o644)
	if _, stderr, code := pushJSON(t, dir, to, "--repo-id", "org/dir"); code != 2 {
		t.Errorf("push of a model directory whose weights do not parse: exit %d, %s", code, stderr)
	}
	if rep, stderr, code := pushJSON(t, dir, to, "--repo-id", "org/dir", "--repo-type", "dataset"); code != 0 || rep.Repo != "datasets/org/dir" {
		t.Errorf("push of a dataset directory: exit %d, %+v %s", code, rep, stderr)
	}
	for _, dst := range []string{to, to + "2"} {
		m, err := mirror.Resolve(t.Context(), openMirror(t, dst), "datasets/org/small", "main")
		if err != nil || m.Commit != ds.Commit() || len(m.Files) != 3 {
			t.Errorf("%s: %v %v", dst, m, err)
		}
	}
}
