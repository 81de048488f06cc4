package main

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func TestVerifyCommand(t *testing.T) {
	url, s := opsMirror(t)
	ctx := context.Background()
	out, errOut, code := runCLI(t, "verify", url)
	if code != 0 || !strings.Contains(out, "checked 1 repos, 2 manifests, 2 refs, 4 blobs") {
		t.Fatalf("verify of a sound mirror: exit %d\n%s%s", code, out, errOut)
	}
	m, err := mirror.Resolve(ctx, s, "org/m", "main")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.File("model.bin")
	if err := storage.PutBytes(ctx, s, mirror.BlobKey(e.SHA256), []byte(strings.Repeat("x", 999)+"y")); err != nil {
		t.Fatal(err)
	}
	if err := storage.PutBytes(ctx, s, mirror.RefKey("org/m", "gone"), []byte(strings.Repeat("0", 40))); err != nil {
		t.Fatal(err)
	}
	out, _, code = runCLI(t, "verify", url, "org/m")
	if code != 1 || !strings.Contains(out, "DAMAGED "+mirror.BlobKey(e.SHA256)) || !strings.Contains(out, "DAMAGED "+mirror.RefKey("org/m", "gone")+": dangling ref") {
		t.Errorf("verify of a damaged mirror: exit %d\n%s", code, out)
	}
	if _, _, code = runCLI(t, "verify", "--quick", url); code != 1 {
		t.Errorf("verify --quick with a dangling ref: exit %d, want 1", code)
	}
	out, _, code = runCLI(t, "verify", "--json", url)
	var rep struct {
		Damage []mirror.Damage `json:"damage"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || len(rep.Damage) != 2 || rep.Error == "" {
		t.Errorf("verify --json: exit %d, %v\n%s", code, err, out)
	}
}

func TestRmCommand(t *testing.T) {
	url, s := opsMirror(t)
	ctx := context.Background()
	main, err := mirror.Resolve(ctx, s, "org/m", "main")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "rm", url, "org/m@main")
	if code != 0 || !strings.Contains(out, "removed ref org/m@main") || !strings.Contains(out, "kept manifest org/m@"+main.Commit) {
		t.Fatalf("rm org/m@main: exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := runCLI(t, "rm", url, "org/m@main"); code != 1 {
		t.Errorf("rm of a removed ref: exit %d, want 1", code)
	}
	if _, _, code := runCLI(t, "rm", url, "org/m@"); code != 2 {
		t.Errorf("rm with an empty revision: exit %d, want 2", code)
	}
	out, _, code = runCLI(t, "rm", "--json", url, "org/m")
	var res mirror.RemoveResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || len(res.Manifests) != 2 || len(res.Refs) != 1 {
		t.Errorf("rm --json org/m: exit %d %v\n%s", code, err, out)
	}
	if _, _, code := runCLI(t, "ls", url, "org/m"); code != 1 {
		t.Errorf("ls of a removed repo: exit %d, want 1", code)
	}
}

func TestGCCommand(t *testing.T) {
	url, s := opsMirror(t)
	ctx := context.Background()
	if _, err := mirror.Remove(ctx, s, "org/m", "int8"); err != nil {
		t.Fatal(err)
	}
	// int8's model.bin and report are unreferenced now, but young.
	out, errOut, code := runCLI(t, "gc", url)
	if code != 0 || !strings.Contains(out, "deleted 0 manifests, 0 blobs") || !strings.Contains(out, "2 unreferenced younger than 24h0m0s") {
		t.Fatalf("gc: exit %d\n%s%s", code, out, errOut)
	}
	// GC keeps unreferenced blobs younger than 2s whatever --grace (coarse
	// store times): these are made an hour old.
	hourAgo := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(url, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chtimes(p, hourAgo, hourAgo)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _, code = runCLI(t, "gc", "--grace", "0s", "--dry-run", url)
	if code != 0 || !strings.Contains(out, "would delete 0 manifests, 2 blobs") {
		t.Fatalf("gc --dry-run: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, "gc", "--json", "--grace", "0s", url)
	var res mirror.GCResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || len(res.DeletedBlobs) != 2 || res.ReferencedBlobs != 2 {
		t.Fatalf("gc --json: exit %d %v\n%s", code, err, out)
	}
	if out, _, code := runCLI(t, "verify", url); code != 0 {
		t.Errorf("verify after gc: exit %d\n%s", code, out)
	}
	if _, _, code := runCLI(t, "gc", "--keep-last", "-1", url); code != 2 {
		t.Errorf("gc --keep-last -1: exit %d, want 2", code)
	}
}
