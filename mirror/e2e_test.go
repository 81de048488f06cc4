package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/storage"
)

// e2eMirror is a mirror filled from a test hub and from disk.
type e2eMirror struct {
	hub   *hubtest.Hub
	store storage.Store
	// revs are the revisions of hub repos mirrored, as repo@rev.
	revs [][2]string
	// dirFiles are the files of the repo pushed from a directory.
	dirFiles map[string][]byte
	// variantFiles are the files of the int8 variant of org/alpha.
	variantFiles map[string][]byte
	variant      string
}

// newE2EMirror mirrors two hub repos (one without an org; several
// revisions, one by commit hash) with Pull, pushes a directory as a third
// repo and a variant of the first.
func newE2EMirror(t *testing.T) *e2eMirror {
	t.Helper()
	ctx := context.Background()
	hub := hubtest.New(t)
	alpha := hubRepo(hub, "org/alpha", 1)
	gpt2 := hub.AddRepo("gpt2")
	for i := range 12 { // enough entries for several tree pages
		gpt2.AddContent(fmt.Sprintf("shards/part-%02d.bin", i), hubtest.PseudoRandom(uint64(100+i), int64(10<<10+i)), true)
	}
	gpt2.AddContent("a/b/c/deep.txt", hubtest.Bytes([]byte("deep\n")), false)
	gpt2.AddContent("config.json", hubtest.Bytes([]byte(`{"model_type": "gpt2"}`)), false)
	gpt2.Tag("refs/pr/1")
	s := newStore(t)
	c := hubClient(t, hub)
	m := &e2eMirror{hub: hub, store: s}
	v1 := ""
	for _, rr := range [][2]string{{"org/alpha", "main"}, {"org/alpha", "v1"}, {"gpt2", "main"}, {"gpt2", "refs/pr/1"}} {
		res, err := Pull(ctx, c, s, rr[0], rr[1], PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rr[1] == "v1" {
			v1 = res.Commit
		}
		m.revs = append(m.revs, rr)
	}
	m.revs = append(m.revs, [2]string{"org/alpha", v1})
	if alpha.Commit() == v1 {
		t.Fatal("the test repo has one commit")
	}

	dir, files := modelDir(t)
	pushDir(t, s, "local/dirmodel", dir, PushOptions{Source: Source{Kind: "dir", Location: dir}})
	m.dirFiles = files

	qdir := t.TempDir()
	q := randomBytes(20, 200<<10)
	os.WriteFile(filepath.Join(qdir, "model.safetensors"), q, 0o644)
	os.WriteFile(filepath.Join(qdir, "config.json"), []byte(`{"model_type": "gpt2", "n_embd": 16}`), 0o644) // as main's: a shared blob
	qfiles, _ := DirFiles(qdir, nil)
	report := []byte(`{"passed": true}`)
	v, err := Push(ctx, s, "org/alpha", qfiles, PushOptions{Variant: &VariantSpec{Name: "int8", SourceRevision: "main", Report: report}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Uploaded != 2 { // the config blob is shared with main
		t.Errorf("variant push: %+v", v)
	}
	m.variant = v.Commit
	m.variantFiles = map[string][]byte{"model.safetensors": q, "config.json": []byte(`{"model_type": "gpt2", "n_embd": 16}`), ReportPath: report}
	return m
}

// cacheListing lists a Hugging Face cache as hf_check.py does: directories,
// symbolic links with their targets, files with their sha256; .locks is
// left out (lock files are an implementation detail of each client).
func cacheListing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case rel == ".locks":
			return filepath.SkipDir
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" -> "+target)
		case d.IsDir():
			out = append(out, rel+"/ dir")
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			out = append(out, rel+" file "+hex.EncodeToString(sum[:]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// dirFiles reads every file under dir (following links), leaving out
// huggingface_hub's .cache/huggingface metadata of a local dir.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".cache" {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFiles(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files, want %d", what, len(got), len(want))
	}
	for p, data := range want {
		if g, ok := got[p]; !ok || !bytes.Equal(g, data) {
			t.Errorf("%s: %s differs (present %v, %d bytes, want %d)", what, p, ok, len(g), len(data))
		}
	}
}

// TestEndToEnd is the acceptance test of the mirror: the hub client, pointed
// at the mirror's server, pulls every mirrored repo and revision into a
// Hugging Face cache that is identical, file for file and link for link, to
// the cache it writes pulling from the Hub itself; with a local dir, the
// same files. Variants and directories pushed from disk come back as they
// went in.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	m := newE2EMirror(t)
	srv := httptest.NewServer(NewServer(m.store, ServerOptions{TreePageSize: 3, SmallFile: 64 << 10}))
	defer srv.Close()
	fromHub := hubClient(t, m.hub)
	fromMirror, err := hubclient.New(hubclient.Options{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range m.revs {
		repo, rev := rr[0], rr[1]
		hubCache, mirrorCache := t.TempDir(), t.TempDir()
		a, err := fromHub.Download(ctx, repo, rev, hubclient.DownloadOptions{CacheDir: hubCache})
		if err != nil {
			t.Fatal(err)
		}
		b, err := fromMirror.Download(ctx, repo, rev, hubclient.DownloadOptions{CacheDir: mirrorCache})
		if err != nil {
			t.Fatalf("%s@%s from the mirror: %v", repo, rev, err)
		}
		if a.Commit != b.Commit {
			t.Errorf("%s@%s: hub commit %s, mirror %s", repo, rev, a.Commit, b.Commit)
		}
		la, lb := cacheListing(t, hubCache), cacheListing(t, mirrorCache)
		if strings.Join(la, "\n") != strings.Join(lb, "\n") {
			t.Errorf("%s@%s: caches differ:\nfrom the hub:\n%s\nfrom the mirror:\n%s", repo, rev, strings.Join(la, "\n"), strings.Join(lb, "\n"))
		}
		local := filepath.Join(t.TempDir(), "local")
		if _, err := fromMirror.Download(ctx, repo, rev, hubclient.DownloadOptions{CacheDir: t.TempDir(), LocalDir: local}); err != nil {
			t.Fatal(err)
		}
		sameFiles(t, repo+"@"+rev+" local dir", dirFiles(t, local), dirFiles(t, a.Dir))
	}

	// The variant, by name and as refs/convert/int8, and the pushed
	// directory.
	for _, rev := range []string{"int8", "refs/convert/int8"} {
		cache := t.TempDir()
		snap, err := fromMirror.Download(ctx, "org/alpha", rev, hubclient.DownloadOptions{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		if snap.Commit != m.variant || filepath.Base(snap.Dir) != m.variant {
			t.Errorf("variant %s: commit %s, want %s", rev, snap.Commit, m.variant)
		}
		sameFiles(t, "variant "+rev, dirFiles(t, snap.Dir), m.variantFiles)
		ref, _ := os.ReadFile(filepath.Join(cache, "models--org--alpha", "refs", filepath.FromSlash(rev)))
		if string(ref) != m.variant {
			t.Errorf("variant ref %s holds %q", rev, ref)
		}
	}
	snap, err := fromMirror.Download(ctx, "local/dirmodel", "", hubclient.DownloadOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, "pushed directory", dirFiles(t, snap.Dir), m.dirFiles)

	// A second pull from the mirror downloads nothing.
	cache := t.TempDir()
	if _, err := fromMirror.Download(ctx, "gpt2", "main", hubclient.DownloadOptions{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	again, err := fromMirror.Download(ctx, "gpt2", "main", hubclient.DownloadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range again.Files {
		if !f.Cached || f.Received != 0 {
			t.Errorf("second pull from the mirror fetched %s (%d bytes)", f.Path, f.Received)
		}
	}
}

// hfPython returns a python3 that can import huggingface_hub, or "".
func hfPython() string {
	for _, p := range []string{os.Getenv("HUBMIRROR_PYTHON"), "python3", "/usr/bin/python3"} {
		if p != "" && exec.Command(p, "-c", "from huggingface_hub import snapshot_download, list_repo_tree").Run() == nil {
			return p
		}
	}
	return ""
}

// hfCheck is one result of hf_serve_check.py.
type hfCheck struct {
	Repo           string            `json:"repo"`
	Revision       *string           `json:"revision"`
	SnapshotCommit string            `json:"snapshot_commit"`
	Snapshot       map[string]string `json:"snapshot"`
	FileSHA256     string            `json:"file_sha256"`
	LocalDir       map[string]string `json:"local_dir"`
	OfflineSame    bool              `json:"offline_same"`
	Tree           []struct {
		Path      string  `json:"path"`
		Type      string  `json:"type"`
		Size      *int64  `json:"size"`
		OID       string  `json:"oid"`
		LFSSHA256 *string `json:"lfs_sha256"`
	} `json:"tree"`
	InfoSHA   string `json:"info_sha"`
	InfoFiles []struct {
		Path      string  `json:"path"`
		Size      int64   `json:"size"`
		BlobID    string  `json:"blob_id"`
		LFSSHA256 *string `json:"lfs_sha256"`
	} `json:"info_files"`
	Refs map[string][][2]string `json:"refs"`
	// For a dataset or space: the cache folder, and HfFileSystem's find
	// (file paths), ls ([name, type] of the top level) and info's size.
	SnapshotFolder string      `json:"snapshot_folder"`
	FSFind         []string    `json:"fs_find"`
	FSLs           [][2]string `json:"fs_ls"`
	FSInfoSize     int64       `json:"fs_info_size"`
}

// runHFServeCheck runs testdata/hf_serve_check.py with python against the
// endpoint for each repo@rev (rev "" = default), and checks every answer
// against the manifests of the mirror in s.
func runHFServeCheck(t *testing.T, python, script, endpoint string, s storage.Store, revs [][2]string) {
	t.Helper()
	type check struct {
		Repo     string  `json:"repo"`
		RepoType string  `json:"repo_type"`
		Revision *string `json:"revision"`
		File     string  `json:"file"`
	}
	var checks []check
	var manifests []*Manifest
	for _, rr := range revs {
		mf, err := Resolve(context.Background(), s, rr[0], rr[1])
		if err != nil {
			t.Fatal(err)
		}
		manifests = append(manifests, mf)
		repoType, id := hubproto.SplitRepo(rr[0])
		c := check{Repo: id, RepoType: repoType, File: mf.Files[len(mf.Files)-1].Path}
		if rr[1] != "" {
			rev := rr[1]
			c.Revision = &rev
		}
		checks = append(checks, c)
	}
	in, _ := json.Marshal(checks)
	work := t.TempDir()
	cmd := exec.Command(python, script, work)
	cmd.Dir = work
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "HF_ENDPOINT="+endpoint, "HF_HOME="+filepath.Join(work, "home"),
		"HF_HUB_DISABLE_PROGRESS_BARS=1", "HF_HUB_DISABLE_TELEMETRY=1", "HF_TOKEN=", "HF_HUB_OFFLINE=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hf_serve_check.py: %v\n%s", err, stderr.String())
	}
	var results []hfCheck
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("hf_serve_check.py output: %v\n%s", err, out)
	}
	if len(results) != len(checks) {
		t.Fatalf("%d results for %d checks", len(results), len(checks))
	}
	for i, r := range results {
		mf := manifests[i]
		what := fmt.Sprintf("huggingface_hub %s@%s", revs[i][0], revs[i][1])
		want := map[string]string{}
		for _, e := range mf.Files {
			want[e.Path] = e.SHA256
		}
		if r.SnapshotCommit != mf.Commit || r.InfoSHA != mf.Commit {
			t.Errorf("%s: snapshot %s, model_info sha %s, want commit %s", what, r.SnapshotCommit, r.InfoSHA, mf.Commit)
		}
		if fmt.Sprint(r.Snapshot) != fmt.Sprint(want) {
			t.Errorf("%s: snapshot_download files %v, want %v", what, r.Snapshot, want)
		}
		if fmt.Sprint(r.LocalDir) != fmt.Sprint(want) {
			t.Errorf("%s: local_dir files %v, want %v", what, r.LocalDir, want)
		}
		if r.FileSHA256 != want[checks[i].File] {
			t.Errorf("%s: hf_hub_download(%s) sha256 %s", what, checks[i].File, r.FileSHA256)
		}
		if !r.OfflineSame {
			t.Errorf("%s: the offline snapshot_download found another snapshot", what)
		}
		// The tree: every file with its blob id and LFS sha256, and every
		// directory with its git tree id.
		trees := mf.treeOIDs()
		nfiles, ndirs := 0, 0
		for _, e := range r.Tree {
			if e.Type == "folder" {
				ndirs++
				if trees[e.Path] != e.OID {
					t.Errorf("%s: tree folder %s oid %s, want %s", what, e.Path, e.OID, trees[e.Path])
				}
				continue
			}
			nfiles++
			f, ok := mf.File(e.Path)
			if !ok || e.Size == nil || *e.Size != f.Size || e.OID != f.GitOID || (e.LFSSHA256 != nil) != f.LFS || (f.LFS && *e.LFSSHA256 != f.SHA256) {
				t.Errorf("%s: tree entry %+v, manifest %+v", what, e, f)
			}
		}
		if nfiles != len(mf.Files) || ndirs != len(trees)-1 {
			t.Errorf("%s: tree lists %d files and %d folders, want %d and %d", what, nfiles, ndirs, len(mf.Files), len(trees)-1)
		}
		if len(r.InfoFiles) != len(mf.Files) {
			t.Errorf("%s: model_info lists %d files", what, len(r.InfoFiles))
		}
		for _, e := range r.InfoFiles {
			f, _ := mf.File(e.Path)
			if e.Size != f.Size || e.BlobID != f.GitOID || (e.LFSSHA256 != nil) != f.LFS {
				t.Errorf("%s: model_info sibling %+v, manifest %+v", what, e, f)
			}
		}
		if repoType, _ := hubproto.SplitRepo(revs[i][0]); repoType != hubproto.RepoTypeModel {
			checkHFFileSystem(t, what, r, mf, checks[i].File)
		}
		if r.SnapshotFolder != hubproto.FolderName(revs[i][0]) {
			t.Errorf("%s: the snapshot is in the cache folder %s, want %s", what, r.SnapshotFolder, hubproto.FolderName(revs[i][0]))
		}
		refs, err := ListRefs(context.Background(), s, revs[i][0])
		if err != nil {
			t.Fatal(err)
		}
		wantRefs := map[string][][2]string{"branches": {}, "tags": {}, "converts": {}}
		for _, ref := range refs {
			kind := "branches"
			if ref.Variant {
				kind = "converts"
			}
			if strings.HasPrefix(ref.Name, "refs/pr/") {
				continue // pull requests are listed only on request
			}
			wantRefs[kind] = append(wantRefs[kind], [2]string{ref.Name, ref.Commit})
		}
		for kind, list := range wantRefs {
			if fmt.Sprint(r.Refs[kind]) != fmt.Sprint(list) {
				t.Errorf("%s: list_repo_refs %s = %v, want %v", what, kind, r.Refs[kind], list)
			}
		}
	}
}

// TestHuggingfaceHubAgainstServer runs the real huggingface_hub against the
// mirror's server (skipped when python3 cannot import it; run with
// PYTHONPATH=/path/to/huggingface_hub/src): snapshot_download,
// hf_hub_download, a local_dir, local_files_only, revision="int8",
// refs/pr/1 and a commit hash, list_repo_tree over pages of 3 entries,
// model_info and list_repo_refs, all checked against the manifests.
func TestHuggingfaceHubAgainstServer(t *testing.T) {
	python := hfPython()
	if python == "" {
		t.Skip("huggingface_hub is not importable by python3 (set PYTHONPATH to its src/ to run this check)")
	}
	m := newE2EMirror(t)
	srv := httptest.NewServer(NewServer(m.store, ServerOptions{TreePageSize: 3, SmallFile: 64 << 10}))
	defer srv.Close()
	script, _ := filepath.Abs("testdata/hf_serve_check.py")
	revs := append(append([][2]string{}, m.revs...), [2]string{"org/alpha", "int8"}, [2]string{"local/dirmodel", ""})
	runHFServeCheck(t, python, script, srv.URL, m.store, revs)
}

// TestHuggingfaceHubAgainstChunkedServer is the same check with chunks of
// 1 KiB and small files of 2 KiB, so that every shard is served through its
// chunk-hash sidecar (serveChunked) to the real client.
func TestHuggingfaceHubAgainstChunkedServer(t *testing.T) {
	python := hfPython()
	if python == "" {
		t.Skip("huggingface_hub is not importable by python3 (set PYTHONPATH to its src/ to run this check)")
	}
	defer func(old int64) { ChunkSize = old }(ChunkSize)
	ChunkSize = MinChunkSize
	m := newE2EMirror(t)
	sidecars := 0
	if err := m.store.List(context.Background(), "blobs/chunks/", func(storage.Info) error { sidecars++; return nil }); err != nil {
		t.Fatal(err)
	}
	if sidecars == 0 {
		t.Fatal("the mirror has no chunk sidecars")
	}
	srv := httptest.NewServer(NewServer(m.store, ServerOptions{TreePageSize: 3, SmallFile: 2 << 10}))
	defer srv.Close()
	script, _ := filepath.Abs("testdata/hf_serve_check.py")
	revs := append(append([][2]string{}, m.revs...), [2]string{"org/alpha", "int8"}, [2]string{"local/dirmodel", ""})
	runHFServeCheck(t, python, script, srv.URL, m.store, revs)
}

// checkHFFileSystem checks what HfFileSystem listed of a dataset or space:
// find gives every file, ls the top level's files and folders, info the
// size of a file.
func checkHFFileSystem(t *testing.T, what string, r hfCheck, mf *Manifest, file string) {
	t.Helper()
	var files []string
	top := map[string]string{}
	for _, e := range mf.Files {
		files = append(files, e.Path)
		if dir, _, nested := strings.Cut(e.Path, "/"); nested {
			top[dir] = "directory"
		} else {
			top[e.Path] = "file"
		}
	}
	sort.Strings(files)
	if fmt.Sprint(r.FSFind) != fmt.Sprint(files) {
		t.Errorf("%s: HfFileSystem.find lists %d files, want %d (first %v)", what, len(r.FSFind), len(files), r.FSFind[:min(3, len(r.FSFind))])
	}
	var wantLs [][2]string
	for name, typ := range top {
		wantLs = append(wantLs, [2]string{name, typ})
	}
	sort.Slice(wantLs, func(i, j int) bool { return wantLs[i][0] < wantLs[j][0] })
	if fmt.Sprint(r.FSLs) != fmt.Sprint(wantLs) {
		t.Errorf("%s: HfFileSystem.ls %v, want %v", what, r.FSLs, wantLs)
	}
	if f, _ := mf.File(file); r.FSInfoSize != f.Size {
		t.Errorf("%s: HfFileSystem.info(%s) size %d, want %d", what, file, r.FSInfoSize, f.Size)
	}
}

// TestHuggingfaceHubDataset runs the real huggingface_hub against the
// mirror's server for a dataset of thousands of small files pulled from
// the test hub (skipped when python3 cannot import huggingface_hub):
// snapshot_download and hf_hub_download with repo_type="dataset" (cache
// folder datasets--org--data), a local_dir, list_repo_tree over pages of
// 100 entries, repo_info, list_repo_refs, and HfFileSystem's find, ls and
// info on datasets/org/data; a model of the same name stays apart.
func TestHuggingfaceHubDataset(t *testing.T) {
	python := hfPython()
	if python == "" {
		t.Skip("huggingface_hub is not importable by python3 (set PYTHONPATH to its src/ to run this check)")
	}
	hub := hubtest.New(t)
	files := map[string][]byte{"README.md": []byte("# data\n")}
	for i := range 2000 {
		files[fmt.Sprintf("data/%s/%05d.jsonl", []string{"train", "test"}[i%2], i)] = []byte(fmt.Sprintf("{\"id\": %d}\n", i))
	}
	hub.AddRepo("datasets/org/data").AddFiles(files)
	hub.AddRepo("org/data").AddFile("config.json", []byte(`{}`))
	s := newStore(t)
	c := hubClient(t, hub)
	for _, repo := range []string{"datasets/org/data", "org/data"} {
		if _, err := Pull(context.Background(), c, s, repo, "main", PullOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(NewServer(s, ServerOptions{TreePageSize: 100}))
	defer srv.Close()
	script, _ := filepath.Abs("testdata/hf_serve_check.py")
	runHFServeCheck(t, python, script, srv.URL, s, [][2]string{{"datasets/org/data", ""}, {"org/data", ""}})
}
