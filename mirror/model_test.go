package mirror

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/storage"
)

// checkDir checks that dir holds exactly the files of want.
func checkDir(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	got := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
		}
		got[filepath.ToSlash(rel)] = data
		return nil
	})
	for p, data := range want {
		if g, ok := got[p]; !ok || !bytes.Equal(g, data) {
			t.Errorf("%s: %d bytes (present %v), want %d", p, len(g), ok, len(data))
		}
		delete(got, p)
	}
	for p := range got {
		t.Errorf("unexpected file %s", p)
	}
}

func TestMaterialize(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	src, files := modelDir(t)
	pushDir(t, s, "org/model", src, PushOptions{})

	dir := filepath.Join(t.TempDir(), "out")
	res, err := Materialize(ctx, s, "org/model", "main", dir, MaterializeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != len(files) || res.Present != 0 {
		t.Errorf("first: %+v", res)
	}
	checkDir(t, dir, files)

	// Again: nothing written. A missing file and one of the wrong size are
	// restored; a same-size change is caught only with Verify.
	os.Remove(filepath.Join(dir, "sub", "README.md"))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	tok := filepath.Join(dir, "tokenizer.json")
	changed := bytes.Clone(files["tokenizer.json"])
	changed[0] ^= 1
	os.WriteFile(tok, changed, 0o644)
	res, err = Materialize(ctx, s, "org/model", "main", dir, MaterializeOptions{})
	if err != nil || res.Written != 2 || res.Present != len(files)-2 {
		t.Errorf("second: %+v %v", res, err)
	}
	res, err = Materialize(ctx, s, "org/model", "main", dir, MaterializeOptions{Verify: true})
	if err != nil || res.Written != 1 {
		t.Errorf("with Verify: %+v %v", res, err)
	}
	checkDir(t, dir, files)

	// A corrupt blob: the file never appears, nor a temporary file.
	m, _ := Resolve(ctx, s, "org/model", "main")
	e, _ := m.File("model.safetensors")
	bad := bytes.Clone(files["model.safetensors"])
	bad[len(bad)/2] ^= 1
	blob := filepath.Join(storeDir(t, s), filepath.FromSlash(BlobKey(e.SHA256)))
	if err := os.WriteFile(blob, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	dir2 := filepath.Join(t.TempDir(), "out2")
	if _, err := Materialize(ctx, s, "org/model", m.Commit, dir2, MaterializeOptions{Jobs: 1}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt blob: %v", err)
	}
	ents, _ := os.ReadDir(dir2)
	for _, en := range ents {
		if en.Name() == "model.safetensors" || strings.HasSuffix(en.Name(), ".tmp") {
			t.Errorf("a corrupt read left %s", en.Name())
		}
	}
	if _, err := Materialize(ctx, s, "org/model", "nope", dir2, MaterializeOptions{}); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("missing revision: %v", err)
	}
}

// storeDir is the directory of a local store.
func storeDir(t *testing.T, s storage.Store) string {
	t.Helper()
	loc := s.Location()
	p, ok := strings.CutPrefix(loc, "file://")
	if !ok {
		t.Fatalf("not a local store: %s", loc)
	}
	return filepath.FromSlash(p)
}

func TestParseModelURL(t *testing.T) {
	for spec, want := range map[string]ModelURL{
		"s3://bucket/prefix#org/name@int8":      {Store: "s3://bucket/prefix", Repo: "org/name", Revision: "int8"},
		"s3://bucket#gpt2":                      {Store: "s3://bucket", Repo: "gpt2"},
		"file:///srv/mirror#org/name@refs/pr/1": {Store: "file:///srv/mirror", Repo: "org/name", Revision: "refs/pr/1"},
		"file:///srv/a%23b#org/name@" + hexes(): {Store: "file:///srv/a%23b", Repo: "org/name", Revision: hexes()},
	} {
		got, ok, err := ParseModelURL(spec)
		if !ok || err != nil || got != want {
			t.Errorf("ParseModelURL(%q) = %+v, %v, %v", spec, got, ok, err)
		}
		if again, _, _ := ParseModelURL(got.String()); again != got {
			t.Errorf("%q does not round-trip: %q", spec, got.String())
		}
	}
	for _, spec := range []string{"s3://b/p#a/b/c", "s3://b/p#", "s3://b/p#org/x@", "file:///m#../x"} {
		if _, ok, err := ParseModelURL(spec); !ok || err == nil {
			t.Errorf("ParseModelURL(%q): ok %v, err %v; want an error", spec, ok, err)
		}
	}
	for _, spec := range []string{"s3://b/p/org/x", "/srv/m#org/x", "org/x@main"} {
		if _, ok, err := ParseModelURL(spec); ok || err != nil {
			t.Errorf("ParseModelURL(%q): ok %v, err %v; want not this form", spec, ok, err)
		}
	}
}

func hexes() string { return strings.Repeat("ab", 20) }

func TestFindModelURL(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := storage.NewLocal(filepath.Join(root, "mirrors", "one"), true)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := modelDir(t)
	pushDir(t, s, "org/model", src, PushOptions{})
	pushDir(t, s, "gpt2", src, PushOptions{Revision: "v1"})
	base := "file://" + filepath.ToSlash(root) + "/mirrors/one"
	for spec, want := range map[string]ModelURL{
		base + "/org/model":                 {Store: base, Repo: "org/model"},
		base + "/org/model@refs/heads/main": {Store: base, Repo: "org/model", Revision: "refs/heads/main"},
		base + "/gpt2@v1":                   {Store: base, Repo: "gpt2", Revision: "v1"},
		base + "#gpt2@v1":                   {Store: base, Repo: "gpt2", Revision: "v1"},
	} {
		got, err := FindModelURL(ctx, spec, nil)
		if err != nil || got != want {
			t.Errorf("FindModelURL(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	if _, err := FindModelURL(ctx, base+"/org/other", nil); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("missing repo: %v", err)
	}
	// A mirror at .../mirrors holding "one/gpt2" as well makes
	// .../mirrors/one/gpt2 ambiguous.
	outer, _ := storage.NewLocal(filepath.Join(root, "mirrors"), true)
	pushDir(t, outer, "one/gpt2", src, PushOptions{})
	if _, err := FindModelURL(ctx, base+"/gpt2", nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous: %v", err)
	}
	if got, err := FindModelURL(ctx, base+"#gpt2", nil); err != nil || got.Store != base {
		t.Errorf("explicit form: %+v %v", got, err)
	}
}
