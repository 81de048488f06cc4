package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// quantize --scheme w4a16 (default group 128, --asym) and --scheme fp8
// write compressed-tensors configs and pass validation; inspect names the
// scheme of the matrices and counts the parameters of the original.
func TestQuantizeLowBitCommand(t *testing.T) {
	src := filepath.Join(fixtureModels, "llama-tiny-st")
	srcInspect, _, code := runCLI(t, "inspect", src, "--json")
	if code != 0 {
		t.Fatal(srcInspect)
	}
	var ref struct{ Parameters int64 }
	if err := json.Unmarshal([]byte(srcInspect), &ref); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args    []string
		format  string
		inspect string
		bits    float64
		sym     bool
		group   any
	}{
		{[]string{"--scheme", "w4a16"}, "pack-quantized", "quantization: w4a16 channel sym", 4, true, 128.0}, // rows of 32 and 80 inputs: one group,
		{[]string{"--scheme", "w4a16", "--group-size", "16", "--asym"}, "pack-quantized", "quantization: w4a16 group 16 asym", 4, false, 16.0},
		{[]string{"--scheme", "fp8"}, "float-quantized", "quantization: fp8 channel", 8, true, nil},
	} {
		dst := filepath.Join(t.TempDir(), "out")
		out, stderr, code := runCLI(t, append([]string{"quantize", src, dst}, c.args...)...)
		if code != 0 || !strings.Contains(out, "PASSED") {
			t.Fatalf("%v: exit %d: %s\n%s", c.args, code, out, stderr)
		}
		raw, err := os.ReadFile(filepath.Join(dst, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Q struct {
				Format string `json:"format"`
				Groups map[string]struct {
					Weights struct {
						Bits      float64 `json:"num_bits"`
						Symmetric bool    `json:"symmetric"`
						GroupSize any     `json:"group_size"`
					} `json:"weights"`
					Input map[string]any `json:"input_activations"`
				} `json:"config_groups"`
			} `json:"quantization_config"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		g := cfg.Q.Groups["group_0"]
		if cfg.Q.Format != c.format || g.Weights.Bits != c.bits || g.Weights.Symmetric != c.sym || g.Weights.GroupSize != c.group {
			t.Errorf("%v: quantization_config %+v", c.args, cfg.Q)
		}
		if c.format == "float-quantized" && (g.Input["dynamic"] != true || g.Input["strategy"] != "token") {
			t.Errorf("fp8: input_activations %v", g.Input)
		}
		human, _, code := runCLI(t, "inspect", dst)
		if code != 0 || !strings.Contains(human, c.inspect) {
			t.Errorf("%v: inspect lacks %q:\n%s", c.args, c.inspect, human)
		}
		js, _, _ := runCLI(t, "inspect", dst, "--json")
		var got struct{ Parameters int64 }
		if err := json.Unmarshal([]byte(js), &got); err != nil || got.Parameters != ref.Parameters {
			t.Errorf("%v: parameters %d, source %d (%v)", c.args, got.Parameters, ref.Parameters, err)
		}
	}
	for _, args := range [][]string{
		{"--scheme", "int8", "--asym"},
		{"--scheme", "w4a16", "--method", "awq"},
		{"--scheme", "fp8", "--group-size", "32"},
		{"--scheme", "w4a16", "--group-size", "-1"},
	} {
		if _, stderr, code := runCLI(t, append([]string{"quantize", src, filepath.Join(t.TempDir(), "x")}, args...)...); code != exitUsage {
			t.Errorf("%v: exit %d, want usage: %s", args, code, stderr)
		}
	}
}
