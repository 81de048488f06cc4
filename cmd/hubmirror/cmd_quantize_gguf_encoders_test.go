package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The encoders' GGUF (quantize.GGUF) cannot be read back by the forward
// pass yet, so quantize --format gguf refuses them before writing anything,
// saying why; MPNet has no llama.cpp architecture at all.
func TestQuantizeGGUFEncoders(t *testing.T) {
	for fixture, want := range map[string]string{
		"bert-cls-st":        "cannot be validated",
		"modernbert-mlm-st":  "llama.cpp's modern-bert architecture",
		"mpnet-model-f16-st": "no MPNet architecture",
	} {
		dst := filepath.Join(t.TempDir(), "x")
		_, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, fixture), dst, "--scheme", "f16", "--format", "gguf")
		if code != exitError || !strings.Contains(stderr, want) {
			t.Errorf("%s: exit %d: %s, want %q", fixture, code, stderr, want)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("%s: DST written: %v", fixture, err)
		}
	}
}
