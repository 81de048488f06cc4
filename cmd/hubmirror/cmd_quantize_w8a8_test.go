package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// quantize --scheme w8a8 writes int8 weights with llm-compressor's W8A8
// config (int8 activations per token, dynamic) and passes validation with
// the int8 kind; inspect names the scheme; a group size is a usage error.
func TestQuantizeW8A8Command(t *testing.T) {
	src := filepath.Join(fixtureModels, "llama-tiny-st")
	dst := filepath.Join(t.TempDir(), "out")
	out, stderr, code := runCLI(t, "quantize", src, dst, "--scheme", "w8a8")
	if code != 0 || !strings.Contains(out, "PASSED") || !strings.Contains(out, "kind:      int8") {
		t.Fatalf("exit %d: %s\n%s", code, out, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dst, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Q struct {
			Format string `json:"format"`
			Groups map[string]struct {
				Weights map[string]any `json:"weights"`
				Input   map[string]any `json:"input_activations"`
			} `json:"config_groups"`
		} `json:"quantization_config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	g := cfg.Q.Groups["group_0"]
	if cfg.Q.Format != "int-quantized" || g.Weights["strategy"] != "channel" || g.Input["type"] != "int" ||
		g.Input["num_bits"] != 8.0 || g.Input["dynamic"] != true || g.Input["strategy"] != "token" {
		t.Errorf("quantization_config %+v", cfg.Q)
	}
	human, _, code := runCLI(t, "inspect", dst)
	if code != 0 || !strings.Contains(human, "quantization: w8a8 channel") {
		t.Errorf("inspect:\n%s", human)
	}
	if _, stderr, code := runCLI(t, "quantize", src, filepath.Join(t.TempDir(), "x"), "--scheme", "w8a8", "--group-size", "16"); code != exitUsage {
		t.Errorf("--group-size: exit %d, want usage: %s", code, stderr)
	}
}
