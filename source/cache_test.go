package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
)

// cacheHubRepo adds a repo with regular and LFS files in nested
// directories, at two commits: the tag v1 (the first) and main.
func cacheHubRepo(hub *hubtest.Hub, id string) *hubtest.Repo {
	r := hub.AddRepo(id)
	r.AddContent("config.json", hubtest.Bytes([]byte(`{"model_type": "gpt2", "n_embd": 8}`)), false)
	r.AddContent("tokenizer.json", hubtest.PseudoRandom(1, 40<<10), false) // a regular file larger than the LFS threshold
	r.AddContent("model.safetensors", hubtest.PseudoRandom(2, 3<<20+5), true)
	r.AddContent("onnx/model.onnx", hubtest.PseudoRandom(3, 600<<10), true)
	r.AddContent("onnx/README.md", hubtest.Bytes([]byte("# onnx\n")), false)
	r.AddContent("empty.txt", hubtest.Bytes(nil), false)
	r.Tag("v1")
	r.AddContent("config.json", hubtest.Bytes([]byte(`{"model_type": "gpt2", "n_embd": 16}`)), false)
	return r
}

// TestPushCacheSnapshot: a snapshot of the Hugging Face cache pushes as the
// Hub's commit with the Hub's LFS flags, and gives the very manifest a pull
// straight from the Hub gives.
func TestPushCacheSnapshot(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.New(t)
	repo := cacheHubRepo(hub, "org/model")
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL()})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	snapMain, err := c.Download(ctx, "org/model", "main", hubclient.DownloadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(ctx, "org/model", "v1", hubclient.DownloadOptions{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}

	snap, err := FindCacheSnapshot(cache, "org/model", "")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Dir != snapMain.Dir || snap.Repo != "org/model" || snap.Commit != repo.Commit() || !slices.Equal(snap.Refs, []string{"main"}) {
		t.Errorf("FindCacheSnapshot: %+v", snap)
	}
	at, ok, err := CacheSnapshotAt(snapMain.Dir)
	if !ok || err != nil || at.Commit != snap.Commit || at.Repo != snap.Repo {
		t.Errorf("CacheSnapshotAt(%s) = %+v, %v, %v", snapMain.Dir, at, ok, err)
	}
	if _, ok, _ := CacheSnapshotAt(t.TempDir()); ok {
		t.Error("a plain directory read as a cache snapshot")
	}
	files, err := snap.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		hf := repo.File(f.Path)
		if f.LFS != hf.LFS || (f.LFS && f.SHA256 != hf.SHA256) || (!f.LFS && f.GitOID != hf.GitSHA1) {
			t.Errorf("%s: cache knowledge %+v, hub %+v", f.Path, f, hf)
		}
	}

	fromCache := newStore(t)
	res, err := mirror.Push(ctx, fromCache, snap.Repo, files, mirror.PushOptions{Commit: snap.Commit, Revision: snap.Refs[0]})
	if err != nil {
		t.Fatal(err)
	}
	fromHub := newStore(t)
	if _, err := mirror.Pull(ctx, c, fromHub, "org/model", "main", mirror.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	a, _ := mirror.Resolve(ctx, fromCache, "org/model", "main")
	b, _ := mirror.Resolve(ctx, fromHub, "org/model", "main")
	if res.Commit != repo.Commit() || !slices.Equal(a.Files, b.Files) {
		t.Errorf("cache push and hub pull differ:\n%+v\n%+v", a.Files, b.Files)
	}

	// A blob of the cache whose content does not match its name is refused.
	blob := filepath.Join(cache, "models--org--model", "blobs", repo.File("model.safetensors").SHA256)
	data, _ := os.ReadFile(blob)
	data[100] ^= 1
	os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	files, _ = snap.Files()
	if _, err := mirror.Push(ctx, newStore(t), snap.Repo, files, mirror.PushOptions{Commit: snap.Commit}); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("push of a corrupt cache blob: %v", err)
	}

	// An incomplete snapshot (a file of its recorded listing missing) is
	// refused.
	os.Remove(filepath.Join(snapMain.Dir, "onnx", "README.md"))
	if _, err := FindCacheSnapshot(cache, "org/model", "main"); !errors.Is(err, hubclient.ErrNotCached) {
		t.Errorf("incomplete snapshot: %v", err)
	}
	if _, ok, err := CacheSnapshotAt(snapMain.Dir); !ok || !errors.Is(err, hubclient.ErrNotCached) {
		t.Errorf("incomplete snapshot by path: %v %v", ok, err)
	}
	if _, err := FindCacheSnapshot(cache, "org/none", ""); !errors.Is(err, hubclient.ErrNotCached) {
		t.Errorf("missing repo: %v", err)
	}
}
