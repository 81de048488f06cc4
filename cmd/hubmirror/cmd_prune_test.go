package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPruneCommand(t *testing.T) {
	src := filepath.Join(fixtureModels, "bert-bin")
	dst := filepath.Join(t.TempDir(), "pruned")
	out, stderr, code := runCLI(t, "prune", src, dst, "--heads", "0:1;1:0,3", "--min-cosine", "0.3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	var cfg struct {
		Pruned map[string][]int `json:"pruned_heads"`
	}
	raw, err := os.ReadFile(filepath.Join(dst, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &cfg)
	if len(cfg.Pruned["0"]) != 1 || len(cfg.Pruned["1"]) != 2 {
		t.Errorf("pruned_heads %v", cfg.Pruned)
	}
	// The pruned model runs as an ordinary model.
	if _, stderr, code := runCLI(t, "forward", dst, "--ids", "1,2,3"); code != 0 {
		t.Errorf("forward on the pruned model: exit %d: %s", code, stderr)
	}
	// 2:4 sparsity, validated against a bar it cannot reach: exit 3.
	dst2 := filepath.Join(t.TempDir(), "sparse")
	if _, _, code := runCLI(t, "prune", src, dst2, "--pattern", "2:4", "--min-cosine", "0.9999"); code != exitValidation {
		t.Errorf("exit %d, want %d", code, exitValidation)
	}
	if _, err := os.Stat(dst2); !os.IsNotExist(err) {
		t.Error("a failed prune wrote DST")
	}
}

func TestPruneUsage(t *testing.T) {
	src := filepath.Join(fixtureModels, "bert-bin")
	for _, args := range [][]string{
		{"prune", src, t.TempDir() + "/x"},
		{"prune", src, t.TempDir() + "/x", "--sparsity", "0.5", "--pattern", "2:4"},
		{"prune", src, t.TempDir() + "/x", "--pattern", "4:2"},
		{"prune", src, t.TempDir() + "/x", "--sparsity", "1.5"},
		{"prune", src, t.TempDir() + "/x", "--heads", "a:b"},
		{"prune", src, t.TempDir() + "/x", "--ffn-keep", "0"},
	} {
		if _, stderr, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
}

// Heads or layers the model does not have are a usage error, and nothing
// is written (defect 2): "9:0" on a 2-layer model once published the model
// unchanged as head-pruned.
func TestPruneHeadsOutOfRange(t *testing.T) {
	src := filepath.Join(fixtureModels, "bert-bin") // 2 layers of 4 heads
	for _, heads := range []string{"9:0", "2:1", "0:4", "0:0,1,2,3", "4"} {
		dst := filepath.Join(t.TempDir(), "pruned")
		_, stderr, code := runCLI(t, "prune", src, dst, "--heads", heads)
		if code != exitUsage || !strings.Contains(stderr, "prune: ") {
			t.Errorf("--heads %s: exit %d, %q; want %d", heads, code, stderr, exitUsage)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("--heads %s: DST written: %v", heads, err)
		}
	}
}
