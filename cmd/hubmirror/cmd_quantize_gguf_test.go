package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/artifact"
)

func TestQuantizeGGUF(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "gguf")
	out, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), dst, "--scheme", "int8", "--format", "gguf", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Published   bool
		Passed      bool
		Files       []string
		Unvalidated string
		Changes     struct {
			Format  string
			Tensors []struct {
				GGUF string `json:"gguf_name"`
				To   string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !doc.Published || doc.Unvalidated == "" || doc.Changes.Format != "gguf" || len(doc.Changes.Tensors) != 3+9*2 {
		t.Fatalf("%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(dst, artifact.GGUFFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("GGUF\x03\x00\x00\x00")) || !bytes.Contains(raw, []byte("blk.1.ffn_down.weight")) {
		t.Errorf("%s does not look like the GGUF v3 of the model", artifact.GGUFFile)
	}
	if _, err := os.Stat(filepath.Join(dst, "model.safetensors")); err == nil {
		t.Error("safetensors written too")
	}
	human, _, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "llama-tiny-st"), dst, "--scheme", "int8", "--format", "gguf")
	if code != 0 || !strings.Contains(human, "not validated by the forward pass") {
		t.Fatalf("exit %d:\n%s", code, human)
	}
}

func TestQuantizeGGUFRefusals(t *testing.T) {
	llama := filepath.Join(fixtureModels, "llama-tiny-st")
	for _, args := range [][]string{
		{"quantize", llama, t.TempDir() + "/x", "--scheme", "fp16", "--format", "gguf"},
		{"quantize", llama, t.TempDir() + "/x", "--scheme", "int8", "--format", "gguf", "--group-size", "16"},
		{"quantize", llama, t.TempDir() + "/x", "--scheme", "int8", "--format", "onnx"},
	} {
		if _, _, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	dst := filepath.Join(t.TempDir(), "x")
	_, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "gpt2-model-st"), dst, "--scheme", "int8", "--format", "gguf")
	if code != exitError || !strings.Contains(stderr, "Llama family") {
		t.Errorf("GPT-2 to GGUF: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("DST written: %v", err)
	}
}
