package formats

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDetectGGUF: a directory holding one GGUF file is read as GGUF (the
// file sniffed by its magic, config.json found); beside a checkpoint under
// another name, the checkpoint is chosen.
func TestDetectGGUF(t *testing.T) {
	dir := t.TempDir()
	gguf := filepath.Join(dir, "model-Q8_0.gguf")
	if err := os.WriteFile(gguf, []byte("GGUF\x03\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Detect(dir)
	if err != nil || l.Kind != KindGGUF || l.Weights != gguf || l.Config == "" {
		t.Fatalf("Detect = %+v, %v", l, err)
	}
	if l, err := Detect(gguf); err != nil || l.Kind != KindGGUF {
		t.Fatalf("Detect(file) = %+v, %v", l, err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "models", "mistral-bin", "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "weights.bin")
	if err := os.WriteFile(bin, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := Detect(dir); err != nil || l.Kind != KindTorch || l.Weights != bin {
		t.Fatalf("Detect with a checkpoint beside the GGUF = %+v, %v", l, err)
	}
}
