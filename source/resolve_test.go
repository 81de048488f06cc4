package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/formats/safetensors"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

const fixture = "../testdata/models/llama-tiny-st"

// modelDir copies the fixture model into a new directory named name.
func modelDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newStore(t *testing.T) storage.Store {
	t.Helper()
	s, err := storage.NewLocal(filepath.Join(t.TempDir(), "mirror"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// hubWithRepo serves org/model at two commits (tag v1, then main) and
// returns a client of it and the cache it downloaded both into.
func hubWithRepo(t *testing.T) (*hubtest.Repo, *hubclient.Client, string) {
	t.Helper()
	hub := hubtest.New(t)
	r := hub.AddRepo("org/model")
	for _, f := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		r.AddFile(f, data)
	}
	r.Tag("v1")
	r.AddFile("README.md", []byte("later\n"))
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL(), RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	for _, rev := range []string{"v1", "main"} {
		if _, err := c.Download(context.Background(), "org/model", rev, hubclient.DownloadOptions{CacheDir: cache}); err != nil {
			t.Fatal(err)
		}
	}
	return r, c, cache
}

func TestResolveKinds(t *testing.T) {
	ctx := context.Background()
	dir := modelDir(t, "My Model")
	src, err := Resolve(ctx, dir, Options{})
	if err != nil || src.Kind != KindDir || src.Repo != "local/My-Model" || src.Path != dir || src.Commit != "" {
		t.Fatalf("directory: %+v %v", src, err)
	}
	files, err := src.Files()
	if err != nil || len(files) != 2 {
		t.Errorf("directory files: %d %v", len(files), err)
	}
	if src, err := Resolve(ctx, dir, Options{RepoID: "acme/x"}); err != nil || src.Repo != "acme/x" {
		t.Errorf("directory with a repo id: %+v %v", src, err)
	}
	if _, err := Resolve(ctx, dir, Options{RepoID: "a/b/c"}); !errors.Is(err, mirror.ErrInvalid) {
		t.Errorf("bad repo id: %v", err)
	}
	file := filepath.Join(dir, "model.safetensors")
	if src, err := Resolve(ctx, file, Options{}); err != nil || src.Kind != KindFile || src.Path != file {
		t.Errorf("file: %+v %v", src, err)
	} else if _, err := src.Files(); !errors.Is(err, ErrRefused) {
		t.Errorf("a file's files: %v", err)
	}
	// A mirror path without file:// gets the URL to write.
	if _, err := Resolve(ctx, "some/dir#org/name", Options{}); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "file://") {
		t.Errorf("dir#org/name: %v", err)
	}
	for _, bad := range []string{"", "./nope/nothing", filepath.Join(t.TempDir(), "missing"), "not a repo!"} {
		if _, err := Resolve(ctx, bad, Options{CacheDir: t.TempDir()}); err == nil {
			t.Errorf("%q resolved", bad)
		}
	}

	// The Hugging Face cache: a repo id, offline, and a snapshot directory.
	repo, client, cache := hubWithRepo(t)
	src, err = Resolve(ctx, "org/model", Options{CacheDir: cache})
	if err != nil || src.Kind != KindCache || src.Commit != repo.Commit() || src.Revision != "main" || src.Repo != "org/model" {
		t.Fatalf("cached repo: %+v %v", src, err)
	}
	snapDir := src.Path
	v1, err := Resolve(ctx, "org/model@v1", Options{CacheDir: cache})
	if err != nil || v1.Commit == repo.Commit() || v1.Revision != "v1" {
		t.Errorf("cached v1: %+v %v", v1, err)
	}
	if _, err := Resolve(ctx, "org/other", Options{CacheDir: cache}); !errors.Is(err, hubclient.ErrNotCached) || !strings.Contains(err.Error(), "hubmirror pull org/other") {
		t.Errorf("uncached repo: %v", err)
	}
	snap, err := Resolve(ctx, snapDir, Options{})
	if err != nil || snap.Kind != KindCache || snap.Commit != repo.Commit() || snap.Revision != "" || len(snap.Refs) != 1 || snap.Refs[0] != "main" {
		t.Errorf("snapshot directory: %+v %v", snap, err)
	}

	// The Hub, through the cache.
	hubSrc, err := Resolve(ctx, "org/model", Options{Hub: client, CacheDir: t.TempDir()})
	if err != nil || hubSrc.Kind != KindHub || hubSrc.Commit != repo.Commit() || hubSrc.Downloaded == 0 || hubSrc.Record().Kind != "hub" {
		t.Errorf("hub: %+v %v", hubSrc, err)
	}

	// A mirror revision: its files without a copy, then a copy that Close
	// removes.
	s := newStore(t)
	pr, err := Push(ctx, s, src, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := s.Location() + "#org/model"
	m, err := Resolve(ctx, spec, Options{TempDir: t.TempDir()})
	if err != nil || m.Kind != KindMirror || m.Commit != pr.Commit || m.Revision != "main" || m.Path != "" {
		t.Fatalf("mirror: %+v %v", m, err)
	}
	if files, err := m.Files(); err != nil || len(files) != 3 { // main has a README.md besides the model
		t.Errorf("mirror files: %d %v", len(files), err)
	}
	local, err := m.Local(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(local, "model.safetensors")); err != nil {
		t.Error(err)
	}
	m.Close()
	if _, err := os.Stat(local); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s", local)
	}
	// With a model cache the copy stays, keyed by commit.
	mc := t.TempDir()
	m, err = Resolve(ctx, spec, Options{ModelCache: mc})
	if err != nil {
		t.Fatal(err)
	}
	local, err = m.Local(ctx)
	m.Close()
	if err != nil || !strings.HasPrefix(local, mc) || filepath.Base(local) != pr.Commit {
		t.Errorf("model cache copy at %s: %v", local, err)
	}
	if _, err := os.Stat(local); err != nil {
		t.Errorf("the cached copy is gone: %v", err)
	}
	// A mirror root with a repo id, and a revision it does not have.
	if r, err := Resolve(ctx, s.Location(), Options{RepoID: "org/model", Revision: "main"}); err != nil || r.Commit != pr.Commit {
		t.Errorf("root with a repo id: %+v %v", r, err)
	}
	if _, err := Resolve(ctx, spec+"@nope", Options{}); !errors.Is(err, mirror.ErrRevisionNotFound) {
		t.Errorf("missing revision: %v", err)
	}
}

func TestRefFor(t *testing.T) {
	for rev, want := range map[string]string{
		"":                       "main",
		"main":                   "main",
		"v1":                     "v1",
		"refs/heads/dev":         "dev",
		"refs/tags/v2":           "v2",
		"refs/pr/1":              "refs/pr/1",
		strings.Repeat("ab", 20): "",
		strings.Repeat("ab", 19): strings.Repeat("ab", 19),
	} {
		ref, noRef := RefFor(rev)
		if ref != want || noRef != (want == "") {
			t.Errorf("RefFor(%q) = %q, %v; want %q", rev, ref, noRef, want)
		}
	}
}

// The ref each kind of source is pushed under, and the record of where it
// came from.
func TestPushRefPolicy(t *testing.T) {
	ctx := context.Background()
	repo, _, cache := hubWithRepo(t)
	s := newStore(t)
	push := func(spec string, o PushOptions) *mirror.PushResult {
		t.Helper()
		src, err := Resolve(ctx, spec, Options{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		res, err := Push(ctx, s, src, o)
		if err != nil {
			t.Fatalf("push %s: %v", spec, err)
		}
		return res
	}
	if r := push("org/model", PushOptions{}); r.Revision != "main" || r.Commit != repo.Commit() {
		t.Errorf("cached main: %+v", r)
	}
	v1 := push("org/model@v1", PushOptions{})
	if v1.Revision != "v1" {
		t.Errorf("cached v1: %+v", v1)
	}
	// A commit id names no ref.
	if r := push("org/model@"+repo.Commit(), PushOptions{Repo: "org/bycommit"}); r.Revision != "" || r.Commit != repo.Commit() {
		t.Errorf("by commit: %+v", r)
	}
	if refs, _ := mirror.ListRefs(ctx, s, "org/bycommit"); len(refs) != 0 {
		t.Errorf("a commit id set refs %+v", refs)
	}
	// A mirror revision keeps its commit; a variant stays a variant.
	dir := modelDir(t, "q")
	qs, err := Resolve(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(ctx, s, qs, PushOptions{Repo: "org/model", Variant: &mirror.VariantSpec{Name: "int8", SourceRevision: "main", Report: []byte(`{"passed": true}`)}}); err != nil {
		t.Fatal(err)
	}
	other := newStore(t)
	for _, rev := range []string{"v1", "int8"} {
		src, err := Resolve(ctx, s.Location()+"#org/model@"+rev, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rev == "int8" { // its source first
			main, _ := Resolve(ctx, s.Location()+"#org/model", Options{})
			if _, err := Push(ctx, other, main, PushOptions{}); err != nil {
				t.Fatal(err)
			}
			main.Close()
		}
		r, err := Push(ctx, other, src, PushOptions{})
		src.Close()
		if err != nil || r.Revision != rev {
			t.Errorf("copy of %s: %+v %v", rev, r, err)
		}
	}
	if m, err := mirror.Resolve(ctx, other, "org/model", "int8"); err != nil || m.Variant == nil || m.Variant.SourceCommit != repo.Commit() {
		t.Errorf("copied variant: %+v %v", m, err)
	}
	if m, _ := mirror.Resolve(ctx, other, "org/model", "v1"); m == nil || m.Commit != v1.Commit || m.Source.Kind != "mirror" {
		t.Errorf("copied v1: %+v", m)
	}
	// A variant is its own revision.
	if _, err := Push(ctx, s, qs, PushOptions{Repo: "org/model", Revision: "other", Variant: &mirror.VariantSpec{Name: "int8", SourceRevision: "main"}}); !errors.Is(err, ErrSpec) {
		t.Errorf("variant under another revision: %v", err)
	}
}

func TestPushRefuses(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	empty := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(empty, 0o755)
	src, _ := Resolve(ctx, empty, Options{})
	if _, err := Push(ctx, s, src, PushOptions{}); !errors.Is(err, ErrRefused) {
		t.Errorf("empty: %v", err)
	}
	dir := modelDir(t, "m")
	os.Truncate(filepath.Join(dir, "model.safetensors"), 1000)
	src, _ = Resolve(ctx, dir, Options{})
	if _, err := Push(ctx, s, src, PushOptions{}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("truncated: %v", err)
	}
	if _, err := Push(ctx, s, src, PushOptions{AllowUnparsed: true}); err != nil {
		t.Errorf("AllowUnparsed: %v", err)
	}
	// The store inside the source directory.
	inner, err := storage.NewLocal(filepath.Join(dir, "mirror"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	if _, err := Push(ctx, inner, src, PushOptions{AllowUnparsed: true}); !errors.Is(err, ErrRefused) {
		t.Errorf("mirror inside the source: %v", err)
	}
}

func TestCheckDestination(t *testing.T) {
	dir := modelDir(t, "m")
	src := &Source{Spec: dir, Kind: KindDir, Path: dir}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{dir, dir + "/", filepath.Join(dir, "a", "b"), "file://" + dir, "file://" + filepath.Join(dir, "x"), filepath.Join(link, "x")} {
		if err := CheckDestination(src, dst); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v", dst, err)
		}
	}
	for _, dst := range []string{dir + "-mirror", filepath.Dir(dir), "s3://bucket/prefix"} {
		if err := CheckDestination(src, dst); err != nil {
			t.Errorf("%s: %v", dst, err)
		}
	}
	if err := CheckDestination(&Source{Kind: KindMirror, Spec: "file:///x#a/b"}, dir); err != nil {
		t.Errorf("a mirror source: %v", err)
	}
}

// CheckRef allows what the push will take and refuses the rest.
func TestCheckRef(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	src, _ := Resolve(ctx, modelDir(t, "m"), Options{RepoID: "org/m"})
	if _, err := Push(ctx, s, src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Push(ctx, s, src, PushOptions{Variant: &mirror.VariantSpec{Name: "int8", SourceRevision: "main", Report: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		repo, rev string
		variant   bool
		refused   bool
	}{
		{"org/m", "main", true, true},
		{"org/m", "main", false, false},
		{"org/m", "int8", true, false},
		{"org/m", "int8", false, true},
		{"org/m", "new", true, false},
		{"org/none", "main", true, false},
	} {
		err := CheckRef(ctx, s, c.repo, c.rev, c.variant)
		if errors.Is(err, ErrRefused) != c.refused || (err != nil && !c.refused) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// Errors about a model copied from a mirror name the model, and still
// wrap the reader's error.
func TestOpenGraphNamesTheModel(t *testing.T) {
	ctx := context.Background()
	dir := modelDir(t, "m")
	os.Truncate(filepath.Join(dir, "model.safetensors"), 1000)
	src, _ := Resolve(ctx, dir, Options{RepoID: "org/broken"})
	s := newStore(t)
	if _, err := Push(ctx, s, src, PushOptions{AllowUnparsed: true}); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	spec := s.Location() + "#org/broken"
	_, _, err := OpenGraph(ctx, spec, Options{TempDir: tmp})
	var se *safetensors.Error
	if err == nil || !strings.Contains(err.Error(), spec+"/model.safetensors") || strings.Contains(err.Error(), tmp) || !errors.As(err, &se) {
		t.Errorf("OpenGraph: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the copy is left behind: %v", left)
	}
}
