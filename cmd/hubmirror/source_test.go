package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

// Tests of how commands resolve and publish sources (package source).

// copyFixture copies the files of a fixture model into a new directory.
func copyFixture(t *testing.T, fixture string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), fixture)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(fixtureModels, fixture))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(fixtureModels, fixture, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// manifestCount counts the manifests of every repo of the local mirror at
// dir.
func manifestCount(t *testing.T, dir string) int {
	t.Helper()
	s, err := storage.NewLocal(dir, false)
	if err != nil {
		return 0
	}
	defer s.Close()
	n := 0
	s.List(context.Background(), "repos/", func(i storage.Info) error {
		if strings.Contains(i.Key, "/manifests/") {
			n++
		}
		return nil
	})
	return n
}

// A mirror inside the model directory (or the directory itself) would fold
// the mirror into the model on the next push: refused, nothing created.
func TestPushRefusesMirrorInsideSource(t *testing.T) {
	dir := copyFixture(t, "llama-tiny-st")
	for _, dst := range []string{dir, filepath.Join(dir, "mirror"), "file://" + filepath.Join(dir, "sub", "mirror")} {
		if _, stderr, code := pushJSON(t, dir, dst); code != exitUsage || !strings.Contains(stderr, "inside the model") {
			t.Errorf("push into %s: exit %d, want %d: %s", dst, code, exitUsage, stderr)
		}
		if _, stderr, code := runCLI(t, "mirror", dir, "--to", dst); code != exitUsage || !strings.Contains(stderr, "inside the model") {
			t.Errorf("mirror --to %s: exit %d, want %d: %s", dst, code, exitUsage, stderr)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 4 { // config, weights, tokenizer.json, tokenizer_config.json
		t.Errorf("the model directory changed: %v", ents)
	}
	// A sibling directory is fine.
	if _, stderr, code := pushJSON(t, dir, dir+"-mirror"); code != 0 {
		t.Errorf("push beside the model: exit %d: %s", code, stderr)
	}
}

// An empty directory, or one whose weights do not parse, is not published;
// --allow-unparsed pushes opaque files.
func TestPushRefusesEmptyAndBrokenSources(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "mirror")
	empty := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(empty, 0o755)
	if _, stderr, code := pushJSON(t, empty, dst); code != exitUsage || !strings.Contains(stderr, "no files") {
		t.Errorf("empty directory: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "mirror", empty, "--to", dst); code != exitUsage || !strings.Contains(stderr, "no files") {
		t.Errorf("mirror of an empty directory: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("a refused source created the mirror: %v", err)
	}

	broken := copyFixture(t, "llama-tiny-st")
	weights := filepath.Join(broken, "model.safetensors")
	st, _ := os.Stat(weights)
	if err := os.Truncate(weights, st.Size()-100); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := pushJSON(t, broken, dst); code != exitUsage || !strings.Contains(stderr, "model.safetensors does not parse") {
		t.Errorf("truncated weights: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "mirror", broken, "--to", dst); code != exitUsage || !strings.Contains(stderr, "does not parse") {
		t.Errorf("mirror of truncated weights: exit %d: %s", code, stderr)
	}
	// A broken sharding index too.
	index := copyFixture(t, "llama-tiny-st")
	os.WriteFile(filepath.Join(index, "model.safetensors.index.json"), []byte(`{"weight_map": [`), 0o644)
	if _, stderr, code := pushJSON(t, index, dst); code != exitUsage {
		t.Errorf("broken index: exit %d: %s", code, stderr)
	}
	if n := manifestCount(t, dst); n != 0 {
		t.Errorf("%d manifests written", n)
	}
	rep, stderr, code := pushJSON(t, broken, dst, "--allow-unparsed")
	if code != 0 || rep.Files != 4 { // with tokenizer.json and tokenizer_config.json
		t.Errorf("--allow-unparsed: exit %d %+v: %s", code, rep.PushResult, stderr)
	}
}

// A DST revision that exists as a branch or tag cannot take a variant: it
// is refused before anything is built, and nothing is written.
func TestQuantizeRefusesExistingBranch(t *testing.T) {
	to := filepath.Join(t.TempDir(), "mirror")
	if _, stderr, code := runCLI(t, "mirror", filepath.Join(fixtureModels, "llama-tiny-st"), "--to", to, "--repo-id", "acme/tiny"); code != 0 {
		t.Fatalf("mirror: exit %d: %s", code, stderr)
	}
	store := "file://" + to
	before := manifestCount(t, to)
	out, stderr, code := runCLI(t, "quantize", store+"#acme/tiny@main", store+"#acme/tiny@main", "--scheme", "int8")
	if code != exitUsage || !strings.Contains(stderr, "branch or tag") || strings.Contains(out, "PASSED") {
		t.Errorf("DST an existing branch: exit %d, want %d\n%s\n%s", code, exitUsage, out, stderr)
	}
	if n := manifestCount(t, to); n != before {
		t.Errorf("%d manifests after the refused build, %d before", n, before)
	}
	// The variant is made; made again, it replaces itself.
	for range 2 {
		if _, stderr, code := runCLI(t, "quantize", store+"#acme/tiny@main", store+"#acme/tiny@int8", "--scheme", "int8"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	}
	// A revision of its own cannot replace that variant.
	if _, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), store+"#acme/tiny@int8", "--scheme", "fp16"); code != exitUsage {
		t.Errorf("DST an existing variant: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "quantize", store+"#acme/tiny@main", store+"#acme/tiny@0123456789012345678901234567890123456789", "--scheme", "int8"); code != exitUsage {
		t.Errorf("DST a commit id: exit %d: %s", code, stderr)
	}
}

// mirror checks every flag before it pulls or pushes anything.
func TestMirrorChecksFlagsFirst(t *testing.T) {
	src := filepath.Join(fixtureModels, "llama-tiny-st")
	for _, args := range [][]string{
		{"--quantize", "int8", "--group-size", "-5"},
		{"--quantize", "fp16", "--group-size", "16"},
		{"--group-size", "16"},
		{"--repo-id", "a/b/c"},
		{"--workers", "0"},
		{"--speed-time", "0s"},
		{"--speed-limit", "fast"},
	} {
		to := filepath.Join(t.TempDir(), "mirror")
		_, stderr, code := runCLI(t, append([]string{"mirror", src, "--to", to}, args...)...)
		if code != exitUsage || strings.Contains(stderr, "step") {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitUsage, stderr)
		}
		if _, err := os.Stat(to); !os.IsNotExist(err) {
			t.Errorf("%v: the mirror was written: %v", args, err)
		}
	}
	// The same rule as quantize: a group size with int8 among the schemes.
	to := filepath.Join(t.TempDir(), "mirror")
	if _, stderr, code := runCLI(t, "mirror", src, "--to", to, "--quantize", "int8,fp16", "--group-size", "16"); code != 0 {
		t.Errorf("int8,fp16 with a group size: exit %d: %s", code, stderr)
	}
}

// A variant published with --force despite a failed validation is judged
// again by the thresholds of each later run; --rebuild builds it again.
func TestMirrorForcedVariantRejudged(t *testing.T) {
	src := filepath.Join(fixtureModels, "llama-tiny-st")
	to := filepath.Join(t.TempDir(), "mirror")
	strict := []string{"--min-cosine", "0.99999999"}
	args := func(extra ...string) []string {
		return append([]string{"mirror", src, "--to", to, "--quantize", "int8"}, extra...)
	}
	if _, stderr, code := runCLI(t, args(append(strict, "--force")...)...); code != exitValidation {
		t.Fatalf("forced: exit %d: %s", code, stderr)
	}
	forced, err := mirror.Resolve(context.Background(), openMirror(t, to), "local/llama-tiny-st", "int8")
	if err != nil {
		t.Fatal(err)
	}
	// Still judged by the strict threshold: exit 3, with the way out named.
	if _, stderr, code := runCLI(t, args(strict...)...); code != exitValidation || !strings.Contains(stderr, "--rebuild") {
		t.Errorf("strict rerun: exit %d: %s", code, stderr)
	}
	// By the default thresholds it passes, without a rebuild.
	out, stderr, code := runCLI(t, args()...)
	if code != 0 || !strings.Contains(squeeze(out), "int8 present passed (int8)") {
		t.Errorf("default rerun: exit %d: %s\n%s", code, stderr, out)
	}
	// --rebuild builds, validates and pushes it again.
	out, stderr, code = runCLI(t, args("--rebuild")...)
	if code != 0 || !strings.Contains(squeeze(out), "int8 pushed passed (int8)") {
		t.Errorf("--rebuild: exit %d: %s\n%s", code, stderr, out)
	}
	rebuilt, err := mirror.Resolve(context.Background(), openMirror(t, to), "local/llama-tiny-st", "int8")
	if err != nil || rebuilt.Commit == forced.Commit {
		t.Errorf("--rebuild left the forced variant %s in place (%v)", forced.Commit, err)
	}
}

// Errors about a model read from a mirror name the model, not the
// temporary directory it was copied to.
func TestMirrorModelErrorsNameTheModel(t *testing.T) {
	broken := copyFixture(t, "llama-tiny-st")
	weights := filepath.Join(broken, "model.safetensors")
	st, _ := os.Stat(weights)
	os.Truncate(weights, st.Size()-100)
	to := filepath.Join(t.TempDir(), "mirror")
	if _, stderr, code := pushJSON(t, broken, to, "--repo-id", "acme/broken", "--allow-unparsed"); code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	spec := "file://" + to + "#acme/broken"
	_, stderr, code := runCLI(t, "inspect", spec)
	if code == 0 || !strings.Contains(stderr, spec) || strings.Contains(stderr, "hubmirror-model-") || strings.Contains(stderr, os.TempDir()+string(filepath.Separator)+"hubmirror") {
		t.Errorf("inspect: exit %d: %s", code, stderr)
	}
}

// mirror takes the sources push takes: a revision of another mirror and a
// snapshot directory of the Hugging Face cache.
func TestMirrorFromOtherSources(t *testing.T) {
	first := filepath.Join(t.TempDir(), "first")
	if _, stderr, code := runCLI(t, "mirror", filepath.Join(fixtureModels, "llama-tiny-st"), "--to", first, "--repo-id", "acme/tiny"); code != 0 {
		t.Fatalf("mirror: exit %d: %s", code, stderr)
	}
	main, err := mirror.Resolve(context.Background(), openMirror(t, first), "acme/tiny", "main")
	if err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(t.TempDir(), "second")
	out, stderr, code := runCLI(t, "mirror", "file://"+first+"#acme/tiny", "--to", second, "--quantize", "int8")
	if code != 0 || !strings.Contains(squeeze(out), "int8 pushed passed (int8)") {
		t.Fatalf("mirror of a mirror revision: exit %d: %s\n%s", code, stderr, out)
	}
	copied, err := mirror.Resolve(context.Background(), openMirror(t, second), "acme/tiny", "main")
	if err != nil || copied.Commit != main.Commit || copied.Source.Kind != "mirror" {
		t.Errorf("copied main: %+v %v", copied, err)
	}
	if v, err := mirror.Resolve(context.Background(), openMirror(t, second), "acme/tiny", "int8"); err != nil || v.Variant == nil || v.Variant.SourceCommit != main.Commit {
		t.Errorf("int8 of the copy: %+v %v", v, err)
	}

	// A snapshot directory of the cache: the Hub's repo id and commit.
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model")
	for _, f := range []string{"config.json", "model.safetensors"} {
		data, _ := os.ReadFile(filepath.Join(fixtureModels, "llama-tiny-st", f))
		repo.AddFile(f, data)
	}
	home := pullEnv(t, hub)
	if code, _, errOut := runPullCLI("pull", "org/model"); code != 0 {
		t.Fatal(errOut)
	}
	snap := filepath.Join(home, "hub", "models--org--model", "snapshots", repo.Commit())
	third := filepath.Join(t.TempDir(), "third")
	if _, stderr, code := runCLI(t, "mirror", snap, "--to", third); code != 0 {
		t.Fatalf("mirror of a snapshot directory: exit %d: %s", code, stderr)
	}
	if m, err := mirror.Resolve(context.Background(), openMirror(t, third), "org/model", "main"); err != nil || m.Commit != repo.Commit() {
		t.Errorf("snapshot mirrored as %+v %v", m, err)
	}
}
