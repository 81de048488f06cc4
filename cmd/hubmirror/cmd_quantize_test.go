package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

const fixtureModels = "../../testdata/models"

func TestQuantizeCommand(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "int8")
	out, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), dst, "--scheme", "int8", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Published bool
		Passed    bool
		Files     []string
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !doc.Published || !doc.Passed {
		t.Fatalf("%s", out)
	}
	if _, err := os.Stat(filepath.Join(dst, "validation.json")); err != nil {
		t.Fatal(err)
	}
	human, _, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), dst, "--scheme", "int8", "--group-size", "16")
	if code != 0 || !strings.Contains(human, "PASSED") || !strings.Contains(human, "published") {
		t.Fatalf("exit %d:\n%s", code, human)
	}
}

// A threshold the result cannot meet: exit 3, and nothing at DST.
func TestQuantizeValidationFails(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "int8")
	out, _, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), dst, "--scheme", "int8", "--min-cosine", "0.9999999")
	if code != exitValidation {
		t.Fatalf("exit %d, want %d:\n%s", code, exitValidation, out)
	}
	if !strings.Contains(out, "FAILED") {
		t.Errorf("no failure in the report:\n%s", out)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("DST written: %v", err)
	}
}

func TestQuantizeUsage(t *testing.T) {
	src := filepath.Join(fixtureModels, "llama-tiny-st")
	for _, args := range [][]string{
		{"quantize", src, t.TempDir() + "/x"},                     // no --scheme
		{"quantize", src, t.TempDir() + "/x", "--scheme", "int4"}, // unknown scheme
		{"quantize", src, "--scheme", "int8"},                     // no DST
		{"quantize", src, t.TempDir() + "/x", "--scheme", "fp16", "--group-size", "8"},
		{"convert", src, t.TempDir() + "/x", "--dtype", "f8"},
		{"convert", src, t.TempDir() + "/x", "--shard-size", "lots"},
	} {
		if _, stderr, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
}

func TestConvertCommand(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "gpt2-st")
	out, stderr, code := runCLI(t, "convert", filepath.Join(fixtureModels, "gpt2-lm-bin"), dst, "--shard-size", "100KB")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	if _, err := os.Stat(filepath.Join(dst, "model.safetensors.index.json")); err != nil {
		t.Errorf("no index with --shard-size 100KB: %v", err)
	}
	if !strings.Contains(out, "exact") || !strings.Contains(out, "PASSED") {
		t.Errorf("%s", out)
	}
	// Back from safetensors to a half-precision copy.
	dst2 := filepath.Join(t.TempDir(), "gpt2-f16")
	if _, stderr, code := runCLI(t, "convert", dst, dst2, "--dtype", "f16"); code != 0 {
		t.Fatalf("f16: exit %d: %s", code, stderr)
	}
	var cfg struct {
		TorchDType string `json:"torch_dtype"`
	}
	raw, _ := os.ReadFile(filepath.Join(dst2, "config.json"))
	json.Unmarshal(raw, &cfg)
	if cfg.TorchDType != "float16" {
		t.Errorf("torch_dtype %q", cfg.TorchDType)
	}
}

// SRC may be any MODEL form: here a revision in a mirror.
func TestQuantizeFromMirror(t *testing.T) {
	to := filepath.Join(t.TempDir(), "mirror")
	if _, stderr, code := runCLI(t, "mirror", filepath.Join(fixtureModels, "llama-tiny-st"), "--to", to, "--repo-id", "acme/tiny"); code != 0 {
		t.Fatalf("mirror: exit %d: %s", code, stderr)
	}
	src := "file://" + to + "#acme/tiny@main"
	dst := filepath.Join(t.TempDir(), "int8")
	out, stderr, code := runCLI(t, "quantize", src, dst, "--scheme", "int8", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	var doc struct{ Source string }
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Source != src {
		t.Errorf("the report names %q as the source (%v)", doc.Source, err)
	}
}

// DST may be a revision in a mirror: a variant of SRC when SRC is a
// revision of the same repo there, else a revision of its own.
func TestQuantizeIntoMirror(t *testing.T) {
	to := filepath.Join(t.TempDir(), "mirror")
	if _, stderr, code := runCLI(t, "mirror", filepath.Join(fixtureModels, "llama-tiny-st"), "--to", to, "--repo-id", "acme/tiny"); code != 0 {
		t.Fatalf("mirror: exit %d: %s", code, stderr)
	}
	store := "file://" + to
	if _, stderr, code := runCLI(t, "quantize", store+"#acme/tiny@main", store+"#acme/tiny@int8", "--scheme", "int8"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m, err := mirror.Resolve(context.Background(), mustStore(t, to), "acme/tiny", "int8")
	if err != nil {
		t.Fatal(err)
	}
	if m.Variant == nil || m.Variant.Name != "int8" {
		t.Errorf("int8 is not a variant of main: %+v", m.Variant)
	}
	if _, ok := m.File("validation.json"); !ok {
		t.Error("the variant has no validation.json")
	}
	// From a local directory: a revision of its own.
	if _, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), store+"#acme/other@fp16", "--scheme", "fp16"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if m, err := mirror.Resolve(context.Background(), mustStore(t, to), "acme/other", "fp16"); err != nil || m.Variant != nil {
		t.Errorf("acme/other@fp16: %v %+v", err, m)
	}
	if _, _, code := runCLI(t, "quantize", store+"#acme/tiny@main", store+"#acme/tiny", "--scheme", "int8"); code != exitUsage {
		t.Errorf("DST without a revision: exit %d, want %d", code, exitUsage)
	}
}

func mustStore(t *testing.T, dir string) storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), dir, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A quantization that changes nothing is refused (exit 2), and nothing is
// written (defect 12): an int8 model again, or every tensor kept.
func TestQuantizeNothing(t *testing.T) {
	src := filepath.Join(fixtureModels, "llama-tiny-st")
	int8 := filepath.Join(t.TempDir(), "int8")
	if _, stderr, code := runCLI(t, "quantize", src, int8, "--scheme", "int8"); code != 0 {
		t.Fatalf("first int8: exit %d: %s", code, stderr)
	}
	for _, args := range [][]string{
		{"quantize", int8, "", "--scheme", "int8"},
		{"quantize", src, "", "--scheme", "int8", "--keep", "*"},
		{"quantize", filepath.Join(fixtureModels, "llama-tiny-f16-st"), "", "--scheme", "fp16"},
	} {
		dst := filepath.Join(t.TempDir(), "again")
		args[2] = dst
		stdout, stderr, code := runCLI(t, append(args, "--json")...)
		if code != exitUsage || !strings.Contains(stderr, "nothing to quantize") {
			t.Errorf("%v: exit %d, %q; want %d, nothing to quantize", args, code, stderr, exitUsage)
			continue
		}
		jsonFailure(t, stdout, exitUsage)
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("%v: DST written: %v", args, err)
		}
	}
}

// A DST that holds something other than an artifact is not overwritten:
// a usage error, and the file stays.
func TestConvertIntoForeignDirectory(t *testing.T) {
	dst := t.TempDir()
	keep := filepath.Join(dst, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, "convert", filepath.Join(fixtureModels, "gpt2-model-st"), dst)
	if code != exitUsage || !strings.Contains(stderr, "not a hubmirror artifact") {
		t.Errorf("exit %d, %q; want %d", code, stderr, exitUsage)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Errorf("the file in DST: %q, %v", b, err)
	}
}
