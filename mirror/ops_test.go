package mirror

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

// bytesFiles returns PushFiles of in-memory contents, by path.
func bytesFiles(files map[string][]byte) []PushFile {
	var out []PushFile
	for p, data := range files {
		out = append(out, PushFile{Path: p, Size: int64(len(data)), LFS: len(data) > 100,
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// pushAt pushes files as revision rev of repo, recorded as created at t.
func pushAt(t *testing.T, s storage.Store, repo, rev string, files map[string][]byte, at time.Time, v *VariantSpec) *PushResult {
	t.Helper()
	res, err := Push(context.Background(), s, repo, bytesFiles(files), PushOptions{Revision: rev, Variant: v, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestDescribeAndList(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	big := bytes.Repeat([]byte("w"), 300)
	main1 := pushAt(t, s, "org/a", "main", map[string][]byte{"config.json": []byte("{}"), "w.bin": big}, t0, nil)
	main2 := pushAt(t, s, "org/a", "main", map[string][]byte{"config.json": []byte(`{"x":1}`), "w.bin": big}, t0.Add(time.Hour), nil)
	pushAt(t, s, "org/a", "", map[string][]byte{"config.json": []byte("{}"), "w.bin": []byte("int8")}, t0.Add(2*time.Hour),
		&VariantSpec{Name: "int8", SourceRevision: "main", Report: []byte(`{"passed":false}`)})
	pushAt(t, s, "b", "v1", map[string][]byte{"x": []byte("x")}, t0, nil)

	info, err := Describe(ctx, s, "org/a")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Commits) != 3 || len(info.Refs) != 2 || len(info.Problems) != 0 {
		t.Fatalf("info %+v", info)
	}
	if c := info.Commits[2]; c.Commit != main1.Commit || len(c.Refs) != 0 || !c.Mirrored.Equal(t0) {
		t.Errorf("oldest commit %+v, want %s without refs", c, main1.Commit)
	}
	if c := info.Commits[1]; c.Commit != main2.Commit || len(c.Refs) != 1 || c.Refs[0] != "main" || c.Files != 2 || c.Bytes != 307 {
		t.Errorf("main commit %+v", c)
	}
	v := info.Commits[0].Variant
	if v == nil || v.Name != "int8" || v.SourceCommit != main2.Commit || v.Verdict != "failed" {
		t.Errorf("variant %+v", v)
	}
	// Distinct blobs: "{}", `{"x":1}`, big, "int8", the report.
	if want := int64(2 + 7 + 300 + 4 + len(`{"passed":false}`)); info.Bytes != want {
		t.Errorf("bytes %d, want %d", info.Bytes, want)
	}

	var repos []string
	if err := List(ctx, s, func(r *RepoInfo) error { repos = append(repos, r.Repo); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(repos) != 2 || repos[0] != "b" || repos[1] != "org/a" {
		t.Errorf("List: %v", repos)
	}
	if _, err := Describe(ctx, s, "org/none"); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("Describe of a missing repo: %v", err)
	}
	// A dangling ref is a problem, not a failure.
	if err := storage.PutBytes(ctx, s, RefKey("b", "gone"), []byte(main1.Commit)); err != nil {
		t.Fatal(err)
	}
	info, err = Describe(ctx, s, "b")
	if err != nil || len(info.Problems) != 1 {
		t.Errorf("dangling ref: %v %+v", err, info)
	}
}
