package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/formats/gguf"
)

func TestQuantizeGGUF(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "gguf")
	// llama-tiny-st's tokenizer has no byte fallback, which llama.cpp needs
	// (see TestQuantizeGGUFRefusals): the file is written without one.
	out, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), dst, "--scheme", "int8", "--format", "gguf", "--no-vocab", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Published   bool
		Passed      bool
		Files       []string
		Unvalidated string
		Validation  struct {
			Kind   string
			Passed bool
		}
		Changes struct {
			Format       string
			Architecture string
			Vocabulary   string
			Tensors      []struct {
				GGUF string `json:"gguf_name"`
				To   string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !doc.Published || !doc.Passed || doc.Unvalidated != "" || doc.Validation.Kind != "int8" || !doc.Validation.Passed || doc.Changes.Format != "gguf" || len(doc.Changes.Tensors) != 3+9*2 ||
		doc.Changes.Architecture != "llama" || !strings.HasPrefix(doc.Changes.Vocabulary, "none") {
		t.Fatalf("%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(dst, artifact.GGUFFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("GGUF\x03\x00\x00\x00")) || !bytes.Contains(raw, []byte("blk.1.ffn_down.weight")) ||
		!bytes.Contains(raw, []byte("no_vocab")) {
		t.Errorf("%s does not look like the GGUF v3 of the model", artifact.GGUFFile)
	}
	if _, err := os.Stat(filepath.Join(dst, "model.safetensors")); err == nil {
		t.Error("safetensors written too")
	}
	human, _, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), dst, "--scheme", "int8", "--format", "gguf", "--no-vocab")
	if code != 0 || strings.Contains(human, "not validated") || !strings.Contains(human, "int8") {
		t.Fatalf("exit %d:\n%s", code, human)
	}
	// forward and validate read the GGUF file (config.json beside it).
	gfile := filepath.Join(dst, artifact.GGUFFile)
	if fw, stderr, code := runCLI(t, "forward", gfile, "--ids", "1,2,3"); code != 0 || !strings.Contains(fw, "logits") {
		t.Fatalf("forward on the GGUF file: exit %d: %s%s", code, fw, stderr)
	}
	if _, stderr, code := runCLI(t, "validate", filepath.Join(fixtureModels, "llama-tiny-st"), gfile, "--kind", "int8"); code != 0 {
		t.Fatalf("validate the GGUF file: exit %d: %s", code, stderr)
	}
	f16 := filepath.Join(t.TempDir(), "f16")
	if out, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "gemma-st"), f16, "--scheme", "f16", "--format", "gguf", "--no-vocab", "--json"); code != 0 ||
		!strings.Contains(out, `"kind": "f16"`) {
		t.Fatalf("gemma f16 --no-vocab: exit %d: %s%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(f16, artifact.GGUFFileName("f16"))); err != nil {
		t.Error(err)
	}
	// A llama-quantize file type, named as llama-quantize spells it.
	km := filepath.Join(t.TempDir(), "km")
	if out, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), km, "--scheme", "Q4_K_M", "--format", "gguf", "--no-vocab", "--json"); code != 0 ||
		!strings.Contains(out, `"kind": "kquant"`) {
		t.Fatalf("--scheme Q4_K_M: exit %d: %s%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(km, "model-Q4_K_M.gguf")); err != nil {
		t.Error(err)
	}
}

func TestQuantizeGGUFRefusals(t *testing.T) {
	llama := filepath.Join(fixtureModels, "llama-tiny-st")
	for _, args := range [][]string{
		{"quantize", llama, t.TempDir() + "/x", "--scheme", "q4_1", "--format", "gguf"},
		{"quantize", llama, t.TempDir() + "/x", "--scheme", "int8", "--no-vocab"},
		{"quantize", llama, t.TempDir() + "/x", "--scheme", "int8", "--format", "gguf", "--group-size", "16"},
		{"quantize", llama, t.TempDir() + "/x", "--scheme", "int8", "--format", "onnx"},
	} {
		if _, _, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	dst := filepath.Join(t.TempDir(), "x")
	_, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "gpt2-model-st"), dst, "--scheme", "int8", "--format", "gguf")
	if code != exitError || !strings.Contains(stderr, "GGUF output is for the decoder families") {
		t.Errorf("GPT-2 to GGUF: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("DST written: %v", err)
	}
	// No tokenizer: refused (llama.cpp needs the vocabulary) unless --no-vocab.
	_, stderr, code = runCLI(t, "quantize", filepath.Join(fixtureModels, "qwen2-bias-st"), dst, "--scheme", "q8_0", "--format", "gguf")
	if code != exitError || !strings.Contains(stderr, "no tokenizer.json") || !strings.Contains(stderr, "--no-vocab") {
		t.Errorf("no tokenizer: exit %d: %s", code, stderr)
	}
	// A tokenizer llama.cpp would not reproduce: refused, saying why.
	_, stderr, code = runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), dst, "--scheme", "q8_0", "--format", "gguf")
	if code != exitError || !strings.Contains(stderr, "without byte_fallback") {
		t.Errorf("no byte fallback: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("DST written: %v", err)
	}
	// What llama.cpp's graph computes otherwise is refused, saying what.
	for fixture, msg := range map[string]string{
		"gemma2-st": "query_pre_attn_scalar 24",
		"qwen3-st":  "sliding-window attention (window 5",
		"gemma3-st": "layer 2's attention is global",
	} {
		_, stderr, code = runCLI(t, "quantize", filepath.Join(fixtureModels, fixture), dst, "--scheme", "q8_0", "--format", "gguf", "--no-vocab")
		if code != exitError || !strings.Contains(stderr, msg) {
			t.Errorf("%s: exit %d: %s", fixture, code, stderr)
		}
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("DST written: %v", err)
	}
}

// TestQuantizeGGUFName: --name sets general.name (the source directory's
// name was written whatever the options said); --name without --format
// gguf is a usage error. (The refusal of a Phi-3 name on a vocabulary
// without Phi-3's tokens is quantize's TestGGUFPhi3Name.)
func TestQuantizeGGUFName(t *testing.T) {
	src := filepath.Join(fixtureModels, "llama-tiny-st")
	dst := filepath.Join(t.TempDir(), "gguf")
	if _, stderr, code := runCLI(t, "quantize", src, dst, "--scheme", "q8_0", "--format", "gguf", "--no-vocab", "--name", "Tiny Llama 42"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := gguf.ReadFile(filepath.Join(dst, artifact.GGUFFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, ok := f.Get("general.name"); !ok || v != "Tiny Llama 42" {
		t.Errorf("general.name = %v, %v", v, ok)
	}
	if _, stderr, code := runCLI(t, "quantize", src, filepath.Join(t.TempDir(), "x"), "--scheme", "int8", "--name", "x"); code != 2 || !strings.Contains(stderr, "--name") {
		t.Errorf("--name without --format gguf: exit %d: %s", code, stderr)
	}
}
