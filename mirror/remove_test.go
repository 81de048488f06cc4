package mirror

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

func TestRemove(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	main := pushAt(t, s, "org/a", "main", map[string][]byte{"w": []byte("main")}, t0, nil)
	dev := pushAt(t, s, "org/a", "dev", map[string][]byte{"w": []byte("dev")}, t0, nil)
	pushAt(t, s, "org/a", "v1", map[string][]byte{"w": []byte("dev")}, t0, nil) // same commit as dev
	int8 := pushAt(t, s, "org/a", "", map[string][]byte{"w": []byte("q")}, t0.Add(time.Hour),
		&VariantSpec{Name: "int8", SourceRevision: "main", Report: []byte(`{"passed":true}`)})
	blobsBefore := countKeys(t, s, blobPrefix)

	// dev's commit is still named by v1.
	res, err := Remove(ctx, s, "org/a", "refs/heads/dev")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Refs, []string{"dev"}) || len(res.Manifests) != 0 || !slices.Equal(res.Kept, []string{dev.Commit}) {
		t.Errorf("rm dev: %+v", res)
	}
	res, err = Remove(ctx, s, "org/a", "v1")
	if err != nil || !slices.Equal(res.Manifests, []string{dev.Commit}) {
		t.Errorf("rm v1: %+v %v", res, err)
	}
	if _, err := ReadManifest(ctx, s, "org/a", dev.Commit); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("dev's manifest after rm: %v", err)
	}
	// main is the source of int8: its manifest stays while int8 exists.
	res, err = Remove(ctx, s, "org/a", "main")
	if err != nil || len(res.Manifests) != 0 || !slices.Equal(res.Kept, []string{main.Commit}) {
		t.Errorf("rm main: %+v %v", res, err)
	}
	if _, err := Resolve(ctx, s, "org/a", "main"); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("main after rm: %v", err)
	}
	if _, err := Resolve(ctx, s, "org/a", "int8"); err != nil {
		t.Errorf("int8 after rm main: %v", err)
	}
	res, err = Remove(ctx, s, "org/a", "int8")
	if err != nil || len(res.Manifests) != 1 || res.Manifests[0] != int8.Commit {
		t.Errorf("rm int8: %+v %v", res, err)
	}
	if _, err := Remove(ctx, s, "org/a", "int8"); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("rm int8 again: %v", err)
	}
	if _, err := Remove(ctx, s, "org/a", main.Commit); !errors.Is(err, ErrInvalid) {
		t.Errorf("rm of a commit id: %v", err)
	}
	// The whole repo: main's manifest, which no ref names any more.
	res, err = Remove(ctx, s, "org/a", "")
	if err != nil || !slices.Equal(res.Manifests, []string{main.Commit}) || len(res.Refs) != 0 {
		t.Errorf("rm org/a: %+v %v", res, err)
	}
	if n := countKeys(t, s, repoPrefix); n != 0 {
		t.Errorf("%d objects left under repos/", n)
	}
	if n := countKeys(t, s, blobPrefix); n != blobsBefore {
		t.Errorf("rm deleted blobs: %d left of %d", n, blobsBefore)
	}
	if _, err := Remove(ctx, s, "org/a", ""); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("rm of a removed repo: %v", err)
	}
}

func countKeys(t *testing.T, s storage.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := s.List(context.Background(), prefix, func(storage.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
