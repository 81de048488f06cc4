package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

// opsMirror returns the URL of a local mirror holding org/m at main and a
// variant int8 whose report passed, and the store.
func opsMirror(t *testing.T) (string, storage.Store) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mirror")
	s, err := storage.NewLocal(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	push := func(rev string, files map[string]string, v *mirror.VariantSpec) {
		var pf []mirror.PushFile
		for p, data := range files {
			pf = append(pf, mirror.PushFile{Path: p, Size: int64(len(data)),
				Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }})
		}
		if _, err := mirror.Push(context.Background(), s, "org/m", pf, mirror.PushOptions{Revision: rev, Variant: v}); err != nil {
			t.Fatal(err)
		}
	}
	push("main", map[string]string{"config.json": "{}", "model.bin": strings.Repeat("x", 1000)}, nil)
	push("", map[string]string{"config.json": "{}", "model.bin": "small"}, &mirror.VariantSpec{Name: "int8", SourceRevision: "main", Report: []byte(`{"passed":true}`)})
	return dir, s
}

func TestLsCommand(t *testing.T) {
	url, _ := opsMirror(t)
	out, errOut, code := runCLI(t, "ls", url)
	if code != 0 {
		t.Fatalf("ls: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"org/m (model): 2 commits, 2 refs", "main", "variant int8 of", "validation passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls output lacks %q:\n%s", want, out)
		}
	}
	out, errOut, code = runCLI(t, "ls", "--json", url, "org/m")
	if code != 0 {
		t.Fatalf("ls --json: exit %d: %s", code, errOut)
	}
	var info mirror.RepoInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if info.Repo != "org/m" || len(info.Commits) != 2 || info.Commits[0].Variant == nil || info.Commits[0].Variant.Verdict != "passed" {
		t.Errorf("ls --json: %+v", info)
	}
	if _, _, code := runCLI(t, "ls", url, "org/none"); code != 1 {
		t.Errorf("ls of a missing repo: exit %d, want 1", code)
	}
	if _, _, code := runCLI(t, "ls", url, "bad--id"); code != 2 {
		t.Errorf("ls of a malformed repo id: exit %d, want 2", code)
	}
}
