package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// quantize --scheme int8 on an MoE model passes validation, quantizes the
// experts and lists the routers (left in float) in quantization_config's
// ignore, so that compressed-tensors loaders keep them as Linear layers.
func TestQuantizeMoE(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "q")
	if _, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "qwen3moe-st"), dst, "--scheme", "int8"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dst, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Q struct {
			Ignore []string `json:"ignore"`
		} `json:"quantization_config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	// Layer 0 is dense (mlp_only_layers [0]); 1 and 2 have routers.
	if !slices.Equal(cfg.Q.Ignore, []string{"model.layers.1.mlp.gate", "model.layers.2.mlp.gate"}) {
		t.Errorf("ignore %v", cfg.Q.Ignore)
	}
}

// prune --ffn-keep on an MoE model prunes every expert and writes the
// experts' width to config.json; --heads works too.
func TestPruneMoE(t *testing.T) {
	src := filepath.Join(fixtureModels, "mixtral-st")
	dst := filepath.Join(t.TempDir(), "ffn")
	if _, stderr, code := runCLI(t, "prune", src, dst, "--ffn-keep", "0.5", "--min-cosine", "0.5"); code != 0 {
		t.Fatalf("--ffn-keep: exit %d: %s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dst, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Intermediate int `json:"intermediate_size"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil || cfg.Intermediate != 24 {
		t.Errorf("intermediate_size %d (%v), want 24", cfg.Intermediate, err)
	}
	if _, stderr, code := runCLI(t, "prune", src, filepath.Join(t.TempDir(), "heads"), "--heads", "1", "--min-cosine", "0.2"); code != 0 {
		t.Errorf("--heads: exit %d: %s", code, stderr)
	}
}
