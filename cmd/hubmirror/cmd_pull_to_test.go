package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

// pullToRepo adds org/model to the hub: regular and LFS files, a tag v1 on
// the first commit, and a second commit on main.
func pullToRepo(hub *hubtest.Hub, weightSize int) *hubtest.Repo {
	r := hub.AddRepo("org/model")
	r.AddContent("config.json", hubtest.Bytes([]byte(`{"model_type": "gpt2"}`)), false)
	r.AddContent("tokenizer/vocab.txt", hubtest.Bytes(bytes.Repeat([]byte("tok\n"), 3000)), false)
	r.AddContent("model.safetensors", hubtest.PseudoRandom(7, int64(weightSize)), true)
	r.Tag("v1")
	r.AddContent("config.json", hubtest.Bytes([]byte(`{"model_type": "gpt2", "n_layer": 2}`)), false)
	return r
}

// outputLastLine is the last non-empty line of s.
func outputLastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestPullToCommand(t *testing.T) {
	hub := hubtest.New(t)
	repo := pullToRepo(hub, 2<<20)
	home := pullEnv(t, hub)
	dst := filepath.Join(t.TempDir(), "mirror")

	code, out, errOut := runPullCLI("pull", "org/model", "--to", "file://"+dst)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	s, err := storage.NewLocal(dst, false)
	if err != nil {
		t.Fatal(err)
	}
	model := s.Location() + "#org/model@" + repo.Commit()
	if got := outputLastLine(out); got != model {
		t.Errorf("last line %q, want %q", got, model)
	}
	m, err := mirror.Resolve(context.Background(), s, "org/model", "main")
	if err != nil || m.Commit != repo.Commit() || len(m.Files) != 3 {
		t.Fatalf("mirror: %+v %v", m, err)
	}
	for _, e := range m.Files {
		f := repo.File(e.Path)
		if e.SHA256 != f.SHA256 || e.GitOID != f.GitSHA1 || e.LFS != f.LFS {
			t.Errorf("%s: %+v, hub %+v", e.Path, e, f)
		}
		if _, err := mirror.VerifyBlob(context.Background(), s, e); err != nil {
			t.Error(err)
		}
	}
	// Nothing went into the Hugging Face cache.
	if _, err := os.Stat(filepath.Join(home, "hub", "models--org--model")); !os.IsNotExist(err) {
		t.Errorf("pull --to wrote to the cache: %v", err)
	}

	// Again: nothing downloaded, nothing uploaded.
	hub.ResetRequests()
	code, out, errOut = runPullCLI("pull", "org/model", "--to", dst)
	if code != 0 || !strings.Contains(out, "already had every file") || outputLastLine(out) != model {
		t.Errorf("second pull --to: exit %d\n%s%s", code, out, errOut)
	}
	if n := len(hub.Downloads("")); n != 0 {
		t.Errorf("second pull --to downloaded %d files", n)
	}

	// --json, the tag, flags after REPO: only the tag's config is fetched.
	code, out, errOut = runPullCLI("pull", "org/model@v1", "--json", "--to", dst)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Repo, Revision, Commit, URL, Model string
		Requested                          string
		DownloadedFiles                    int   `json:"downloaded_files"`
		Uploaded                           int   `json:"uploaded"`
		Downloaded                         int64 `json:"downloaded_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if doc.Revision != "v1" || doc.Commit == repo.Commit() || doc.DownloadedFiles != 1 || doc.Uploaded != 1 || doc.URL != s.Location() ||
		doc.Model != s.Location()+"#org/model@"+doc.Commit {
		t.Errorf("json %+v", doc)
	}
	// By commit: no ref.
	code, out, _ = runPullCLI("pull", "org/model@"+doc.Commit, "--to", dst)
	if code != 0 || !strings.Contains(out, "no ref set") {
		t.Errorf("pull --to of a commit: exit %d %s", code, out)
	}
	refs, _ := mirror.ListRefs(context.Background(), s, "org/model")
	if len(refs) != 2 {
		t.Errorf("refs %+v", refs)
	}

	for _, args := range [][]string{
		{"pull", "org/model", "--to", dst, "--local-dir", t.TempDir()},
		{"pull", "org/model", "--to", dst, "--cache-dir", t.TempDir()},
		{"pull", "org/model", "--to", dst, "--offline"},
	} {
		if code, _, errOut := runPullCLI(args...); code != exitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, errOut, exitUsage)
		}
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	if code, _, errOut := runPullCLI("pull", "org/model", "--to", dst); code != exitUsage || !strings.Contains(errOut, "hubmirror push") {
		t.Errorf("offline: exit %d %s", code, errOut)
	}
}

// TestPullToKilled kills a pull --to while it streams a large file, checks
// that nothing partial is visible and no manifest was written, then reruns
// it to completion.
func TestPullToKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 48 MiB")
	}
	hub := hubtest.New(t)
	repo := pullToRepo(hub, 48<<20)
	pullEnv(t, hub)
	hub.SetBandwidth(8 << 20)
	dst := filepath.Join(t.TempDir(), "mirror")
	cmd := exec.Command(os.Args[0], "-test.run=^TestPushHelperProcess$")
	cmd.Env = append(os.Environ(), "HUBMIRROR_PUSH_HELPER="+strings.Join([]string{"pull", "org/model", "--to", dst, "--workers", "1"}, "\x1f"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killWhenStaged(t, cmd, dst, 4<<20, "the pull finished or never started streaming the big file before the deadline")
	s, err := storage.NewLocal(dst, false)
	if err != nil {
		t.Fatal(err)
	}
	onlyCompleteBlobs(t, s, "killed pull")
	if _, err := s.Stat(context.Background(), mirror.BlobKey(repo.File("model.safetensors").SHA256)); err == nil {
		t.Error("the blob being streamed when the pull was killed is visible")
	}

	hub.SetBandwidth(0)
	code, out, errOut := runPullCLI("pull", "org/model", "--to", dst, "--json")
	if code != 0 {
		t.Fatalf("rerun: exit %d: %s", code, errOut)
	}
	var doc struct {
		ManifestWritten bool `json:"manifest_written"`
		Uploaded        int
		Present         int
	}
	json.Unmarshal([]byte(out), &doc)
	if !doc.ManifestWritten || doc.Uploaded == 0 || doc.Uploaded+doc.Present != 3 {
		t.Errorf("rerun: %s", out)
	}
	m, err := mirror.Resolve(context.Background(), s, "org/model", "main")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Files {
		if _, err := mirror.VerifyBlob(context.Background(), s, e); err != nil {
			t.Error(err)
		}
	}
	var n int
	s.List(context.Background(), "", func(i storage.Info) error {
		if !strings.HasPrefix(i.Key, "leases/") { // the killed pull's
			n++
		}
		return nil
	})
	if n != 3+1+2 {
		t.Errorf("%d objects after the rerun, want 6 (three blobs, the big one's chunk sidecar, a manifest, a ref)", n)
	}
}

// TestPushFromCache pushes a repo id and a snapshot directory of the
// Hugging Face cache: the Hub's commit, the same manifest as pull --to.
func TestPushFromCache(t *testing.T) {
	hub := hubtest.New(t)
	repo := pullToRepo(hub, 100<<10)
	home := pullEnv(t, hub)
	for _, rev := range []string{"main", "v1"} {
		if code, _, errOut := runPullCLI("pull", "org/model@"+rev); code != 0 {
			t.Fatalf("pull %s: %s", rev, errOut)
		}
	}
	viaHub := filepath.Join(t.TempDir(), "hub")
	if code, _, errOut := runPullCLI("pull", "org/model", "--to", viaHub); code != 0 {
		t.Fatal(errOut)
	}

	dst := filepath.Join(t.TempDir(), "mirror")
	rep, stderr, code := pushJSON(t, "org/model", dst)
	if code != 0 || rep.Commit != repo.Commit() || rep.Revision != "main" || rep.Uploaded != 3 {
		t.Fatalf("push org/model: exit %d %+v %s", code, rep.PushResult, stderr)
	}
	v1, stderr, code := pushJSON(t, "org/model@v1", dst)
	if code != 0 || v1.Revision != "v1" || v1.Uploaded != 1 || v1.Commit == repo.Commit() {
		t.Errorf("push org/model@v1: exit %d %+v %s", code, v1.PushResult, stderr)
	}
	snapDir := filepath.Join(home, "hub", "models--org--model", "snapshots", repo.Commit())
	dst2 := filepath.Join(t.TempDir(), "mirror2")
	rep2, stderr, code := pushJSON(t, snapDir, dst2)
	if code != 0 || rep2.Commit != repo.Commit() || rep2.Repo != "org/model" || rep2.Revision != "main" {
		t.Errorf("push of the snapshot directory: exit %d %+v %s", code, rep2.PushResult, stderr)
	}
	a, b, c := openMirror(t, dst), openMirror(t, dst2), openMirror(t, viaHub)
	ma, _ := mirror.Resolve(context.Background(), a, "org/model", "main")
	mb, _ := mirror.Resolve(context.Background(), b, "org/model", "main")
	mc, _ := mirror.Resolve(context.Background(), c, "org/model", "main")
	if !slices.Equal(ma.Files, mc.Files) || !slices.Equal(mb.Files, mc.Files) || ma.Source.Kind != "cache" {
		t.Errorf("pushes from the cache and pull --to differ:\n%+v\n%+v\n%+v", ma, mb, mc)
	}
	if _, stderr, code := pushJSON(t, "org/missing", dst); code != exitError || !strings.Contains(stderr, "hubmirror pull org/missing") {
		t.Errorf("push of an uncached repo: exit %d %s", code, stderr)
	}
	// A mirror revision as SRC, in both URL forms.
	dst3 := filepath.Join(t.TempDir(), "mirror3")
	for _, src := range []string{a.Location() + "#org/model@v1", a.Location() + "/org/model"} {
		if r, stderr, code := pushJSON(t, src, dst3); code != 0 || (r.Commit != repo.Commit() && r.Commit != v1.Commit) {
			t.Errorf("push %s: exit %d %+v %s", src, code, r.PushResult, stderr)
		}
	}
	refs, _ := mirror.ListRefs(context.Background(), openMirror(t, dst3), "org/model")
	if len(refs) != 2 || refs[0].Name != "main" || refs[1].Name != "v1" || refs[1].Commit != v1.Commit {
		t.Errorf("copied refs %+v", refs)
	}
}

func openMirror(t *testing.T, dir string) storage.Store {
	t.Helper()
	s, err := storage.NewLocal(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestModelSpecs: inspect and forward read a model from a mirror (both URL
// forms) and from the Hugging Face cache by repo id, with the same result
// as from its directory.
func TestModelSpecs(t *testing.T) {
	const src = "../../testdata/models/gpt2-model-st"
	hub := hubtest.New(t)
	r := hub.AddRepo("org/gpt2")
	for _, name := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		r.AddFile(name, data)
	}
	pullEnv(t, hub)
	if code, _, errOut := runPullCLI("pull", "org/gpt2"); code != 0 {
		t.Fatal(errOut)
	}
	dst := filepath.Join(t.TempDir(), "mirror")
	if code, _, errOut := runPullCLI("pull", "org/gpt2", "--to", dst); code != 0 {
		t.Fatal(errOut)
	}
	loc := openMirror(t, dst).Location()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	forward := func(spec string) []byte {
		t.Helper()
		outFile := filepath.Join(t.TempDir(), "out.safetensors")
		if _, errOut, code := runCLI(t, "forward", spec, "--ids", "1,2,3", "--out", outFile); code != 0 {
			t.Fatalf("forward %s: exit %d: %s", spec, code, errOut)
		}
		data, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	inspect := func(spec string) string {
		t.Helper()
		out, errOut, code := runCLI(t, "inspect", "--json", spec)
		if code != 0 {
			t.Fatalf("inspect %s: exit %d: %s", spec, code, errOut)
		}
		var doc map[string]any
		json.Unmarshal([]byte(out), &doc)
		delete(doc, "files")
		delete(doc, "path")
		delete(doc, "model")
		b, _ := json.Marshal(doc)
		return string(b)
	}
	want, wantInspect := forward(src), inspect(src)
	for _, spec := range []string{"org/gpt2", "org/gpt2@main", loc + "#org/gpt2", loc + "/org/gpt2@main"} {
		if got := forward(spec); !bytes.Equal(got, want) {
			t.Errorf("forward %s differs from forward of the directory", spec)
		}
		if got := inspect(spec); got != wantInspect {
			t.Errorf("inspect %s:\n%s\nwant\n%s", spec, got, wantInspect)
		}
	}
	if _, _, code := runCLI(t, "validate", src, loc+"#org/gpt2"); code != 0 {
		t.Errorf("validate against the mirror copy: exit %d", code)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temporary copies left in TMPDIR: %v", ents)
	}
	for _, spec := range []string{"org/absent", loc + "#org/absent", loc + "/org/absent"} {
		if _, errOut, code := runCLI(t, "inspect", spec); code == 0 {
			t.Errorf("inspect %s succeeded", spec)
		} else if spec == "org/absent" && !strings.Contains(errOut, "hubmirror pull") {
			t.Errorf("inspect %s: %s", spec, errOut)
		}
	}
}

// TestPullToS3 streams a repo from the hub into a bucket of the S3 server
// .ci/run starts (skipped without HUBMIRROR_TEST_S3_ENDPOINT), pulls it
// again (nothing downloaded), copies a revision out of the bucket by its
// path-form model URL, and serves the bucket back to hubmirror pull.
func TestPullToS3(t *testing.T) {
	ep := os.Getenv("HUBMIRROR_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("HUBMIRROR_TEST_S3_ENDPOINT is not set; .ci/run starts a versitygw server and sets it")
	}
	t.Setenv("AWS_ENDPOINT_URL", ep)
	t.Setenv("AWS_ACCESS_KEY_ID", os.Getenv("HUBMIRROR_TEST_S3_ACCESS_KEY"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", os.Getenv("HUBMIRROR_TEST_S3_SECRET_KEY"))
	t.Setenv("AWS_REGION", "us-east-1")
	hub := hubtest.New(t)
	repo := pullToRepo(hub, 20<<20) // more than one 16 MiB part
	pullEnv(t, hub)
	bucket := "s3://hubmirror-pullto-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-") + "-" + time.Now().Format("150405.000000")
	bucket = strings.ReplaceAll(bucket, ".", "")
	url := bucket + "/mirror"
	code, out, errOut := runPullCLI("pull", "org/model", "--to", url)
	if code != 0 {
		t.Fatalf("pull --to s3: exit %d: %s", code, errOut)
	}
	if got := outputLastLine(out); got != url+"#org/model@"+repo.Commit() {
		t.Errorf("last line %q", got)
	}
	hub.ResetRequests()
	if code, out, _ := runPullCLI("pull", "org/model", "--to", url); code != 0 || !strings.Contains(out, "already had every file") || len(hub.Downloads("")) != 0 {
		t.Errorf("second pull --to s3: exit %d, %d downloads\n%s", code, len(hub.Downloads("")), out)
	}
	if code, _, errOut := runPullCLI("pull", "org/model@v1", "--to", url); code != 0 {
		t.Fatalf("pull --to s3 v1: %s", errOut)
	}
	local := filepath.Join(t.TempDir(), "copy")
	if rep, stderr, code := pushJSON(t, url+"/org/model@v1", local); code != 0 || rep.Revision != "v1" {
		t.Errorf("push from the bucket by path-form URL: exit %d %+v %s", code, rep.PushResult, stderr)
	}
	served := startServe(t, "--from", url)
	cache := t.TempDir()
	code, out, errOut = runPullCLI("pull", "org/model", "--cache-dir", cache, "--endpoint", served)
	if code != 0 {
		t.Fatalf("pull from serve --from s3: %s", errOut)
	}
	got, err := os.ReadFile(filepath.Join(outputLastLine(out), "model.safetensors"))
	if err != nil || storage.SHA256Hex(got) != repo.File("model.safetensors").SHA256 {
		t.Errorf("model.safetensors served from S3: %v", err)
	}
}

// recordProgress records the events it gets.
type recordProgress struct{ events []string }

func (r *recordProgress) Hashed(p string, n int64)   { r.events = append(r.events, "hashed "+p) }
func (r *recordProgress) Uploaded(p string, n int64) { r.events = append(r.events, "uploaded "+p) }
func (r *recordProgress) FileDone(p string, size int64, uploaded bool) {
	r.events = append(r.events, "done "+p)
}

// TestLateProgress: events before the bars exist are dropped, later ones
// reach them.
func TestLateProgress(t *testing.T) {
	var l lateProgress
	l.Uploaded("a", 1)
	l.FileDone("a", 1, true)
	rec := &recordProgress{}
	l.set(rec)
	l.Hashed("b", 1)
	l.Uploaded("b", 1)
	l.FileDone("b", 1, true)
	if got := strings.Join(rec.events, ","); got != "hashed b,uploaded b,done b" {
		t.Errorf("events %q", got)
	}
}
