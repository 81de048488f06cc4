package mirror

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/hubmirror/hubmirror/storage"
)

// TestLayoutRepoTypes: model keys are as they always were (stored mirrors
// stay readable); datasets and spaces have folders of their own, and the
// folder names read back into the qualified ids.
func TestLayoutRepoTypes(t *testing.T) {
	c := "0123456789012345678901234567890123456789"
	for repo, want := range map[string]string{
		"org/name":          "repos/models--org--name/manifests/" + c + ".json",
		"gpt2":              "repos/models--gpt2/manifests/" + c + ".json",
		"datasets/org/name": "repos/datasets--org--name/manifests/" + c + ".json",
		"spaces/org/app":    "repos/spaces--org--app/manifests/" + c + ".json",
	} {
		if got := ManifestKey(repo, c); got != want {
			t.Errorf("ManifestKey(%s) = %s, want %s", repo, got, want)
		}
		dir := repoDir(repo)[len(repoPrefix):]
		if back, ok := repoFromDir(dir); !ok || back != repo {
			t.Errorf("repoFromDir(%s) = %s %v, want %s", dir, back, ok, repo)
		}
	}
	if got := RefKey("datasets/org/name", "refs/pr/1"); got != "repos/datasets--org--name/refs/refs%2Fpr%2F1" {
		t.Errorf("RefKey = %s", got)
	}
	for _, dir := range []string{"datasets--a--b--c", "models--", "other--org--name", "datasets--org--bad..name"} {
		if id, ok := repoFromDir(dir); ok {
			t.Errorf("repoFromDir(%s) = %s", dir, id)
		}
	}
	for _, id := range []string{"datasets/org/name", "datasets/squad", "spaces/org/app"} {
		if err := ValidateRepoID(id); err != nil {
			t.Errorf("ValidateRepoID(%s): %v", id, err)
		}
	}
	for _, id := range []string{"datasets/org/a/b", "datasets/", "spaces/--x", "org/name/x"} {
		if ValidateRepoID(id) == nil {
			t.Errorf("ValidateRepoID(%s) accepts it", id)
		}
	}
}

// TestFindModelURLDataset: the path form of a ModelURL names a dataset by
// datasets/org/name after the mirror's root.
func TestFindModelURLDataset(t *testing.T) {
	root := filepath.Join(t.TempDir(), "m")
	s, err := storage.NewLocal(root, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := []byte("a,b\n1,2\n")
	files := []PushFile{{Path: "data.csv", Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}}
	if _, err := Push(context.Background(), s, "datasets/org/name", files, PushOptions{Revision: "main"}); err != nil {
		t.Fatal(err)
	}
	u, err := FindModelURL(context.Background(), "file://"+root+"/datasets/org/name@main", nil)
	if err != nil || u.Store != "file://"+root || u.Repo != "datasets/org/name" || u.Revision != "main" {
		t.Errorf("FindModelURL: %+v, %v", u, err)
	}
	if _, err := FindModelURL(context.Background(), "file://"+root+"/org/name", nil); err == nil {
		t.Error("the model org/name, which the mirror does not hold, was found")
	}
}
