package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
)

// The quick start of README.md: a model shipped in testdata, a local mirror.
func TestMirrorLocalDirectory(t *testing.T) {
	to := filepath.Join(t.TempDir(), "mirror")
	out, stderr, code := runCLI(t, "mirror", filepath.Join(fixtureModels, "llama-tiny-st"), "--to", to, "--quantize", "int8,fp16", "--convert", "safetensors")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	for _, want := range []string{"local/llama-tiny-st@main", "PASSED", "int8 pushed passed (int8)", "fp16 pushed passed (f16)", "the source is already safetensors", "mirrored local/llama-tiny-st@main"} {
		if !strings.Contains(squeeze(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, ref := range []string{"main", "int8", "fp16"} {
		if _, err := os.Stat(filepath.Join(to, "repos", "models--local--llama-tiny-st", "refs", ref)); err != nil {
			t.Errorf("ref %s: %v", ref, err)
		}
	}
	// The shipped example model is the model and its tokenizer alone: no
	// test fixture (the expected outputs live in testdata/expected).
	m, err := mirror.Resolve(context.Background(), openMirror(t, to), "local/llama-tiny-st", "main")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range m.Files {
		names = append(names, e.Path)
	}
	if strings.Join(names, ",") != "config.json,model.safetensors,tokenizer.json,tokenizer_config.json" {
		t.Errorf("the quick start mirrored %v, want the model's config.json, model.safetensors and tokenizer files", names)
	}
	// A pickled model gets a safetensors variant.
	out, stderr, code = runCLI(t, "mirror", filepath.Join(fixtureModels, "gpt2-lm-bin"), "--to", to, "--convert", "safetensors", "--repo-id", "acme/gpt2")
	if code != 0 || !strings.Contains(squeeze(out), "safetensors pushed passed (exact)") {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
}

// A variant that fails validation: exit 3, the failed step named, the
// variant not pushed, the source and the other variants mirrored.
func TestMirrorFailedStep(t *testing.T) {
	to := filepath.Join(t.TempDir(), "mirror")
	out, stderr, code := runCLI(t, "mirror", filepath.Join(fixtureModels, "llama-tiny-st"), "--to", to, "--quantize", "int8", "--min-cosine", "0.99999999")
	if code != exitValidation {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitValidation, out, stderr)
	}
	if !strings.Contains(stderr, "step quantize int8") || !strings.Contains(out, "FAILED at step quantize int8") {
		t.Errorf("the failed step is not named:\nstdout:\n%s\nstderr:\n%s", out, stderr)
	}
	refs := filepath.Join(to, "repos", "models--local--llama-tiny-st", "refs")
	if _, err := os.Stat(filepath.Join(refs, "main")); err != nil {
		t.Errorf("source not mirrored: %v", err)
	}
	if _, err := os.Stat(filepath.Join(refs, "int8")); !os.IsNotExist(err) {
		t.Errorf("a failed variant was pushed: %v", err)
	}
}

func TestMirrorUsage(t *testing.T) {
	src := filepath.Join(fixtureModels, "llama-tiny-st")
	for _, args := range [][]string{
		{"mirror", src},
		{"mirror", "--to", t.TempDir()},
		{"mirror", src, "--to", t.TempDir(), "--quantize", "int4"},
		{"mirror", src, "--to", t.TempDir(), "--convert", "onnx"},
	} {
		if _, stderr, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
	// An invalid repo id is a usage error (hubclient.ErrInvalidRepoID).
	if _, stderr, code := runCLI(t, "mirror", "not a repo!", "--to", t.TempDir()); code != exitUsage || !strings.Contains(stderr, "step pull") {
		t.Errorf("bad source: exit %d: %s", code, stderr)
	}
}

// squeeze folds runs of spaces, so tests need not know column widths.
func squeeze(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " ")
}

// Without variants, a repo streams from the Hub into the mirror with no
// copy in the Hugging Face cache; a rerun downloads nothing.
func TestMirrorStreamsWithoutVariants(t *testing.T) {
	hub := hubtest.New(t)
	repo := hub.AddRepo("acme/tiny")
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(fixtureModels, "llama-tiny-st", f))
		if err != nil {
			t.Fatal(err)
		}
		repo.AddFile(f, b)
	}
	home := t.TempDir()
	t.Setenv("HF_ENDPOINT", hub.URL())
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", "")
	to := filepath.Join(t.TempDir(), "mirror")
	out, stderr, code := runCLI(t, "mirror", "acme/tiny", "--to", to, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	if !strings.Contains(out, repo.Commit()) {
		t.Errorf("the Hub's commit is not the mirrored one:\n%s", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(home, "hub")); len(entries) != 0 {
		t.Errorf("files landed in the Hugging Face cache: %v", entries)
	}
	hub.ResetRequests()
	out, _, code = runCLI(t, "mirror", "acme/tiny", "--to", to, "--json")
	if code != 0 || !strings.Contains(out, `"downloaded_bytes": 0`) || !strings.Contains(out, `"uploaded_bytes": 0`) {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
	for _, r := range hub.Requests() {
		if r.Kind == "blob" || (r.Kind == "resolve" && r.Method == "GET") {
			t.Errorf("rerun downloaded %s", r.Path)
		}
	}
}
