package forward

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// FuzzLoadConfig loads the tensors of fixtures of several families under
// arbitrary config.json documents and runs what loads: a config never makes
// Load or Run panic, and whatever runs returns outputs of the shapes its
// Info promises.
func FuzzLoadConfig(f *testing.F) {
	names := []string{"llama-tiny-st", "gpt2-lm-bin", "bert-cls-st", "mistral-bin", "qwen2-bias-st", "qwen3-st", "gemma2-st", "gemma3-st",
		"mixtral-st", "qwen2moe-st", "qwen3moe-st"}
	var graphs []*weights.Graph
	for _, n := range names {
		dir := filepath.Join(fixtures, n)
		graphs = append(graphs, openGraph(f, dir))
		cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(cfg)
	}
	f.Fuzz(func(t *testing.T, config []byte) {
		for _, src := range graphs {
			g := weights.NewGraph()
			for _, tn := range src.Tensors() {
				g.Add(tn)
			}
			g.Config = config
			m, err := Load(g, nil, Options{Threads: 2})
			if err != nil {
				continue
			}
			info := m.Info()
			ids := []int{0, 1, 2}
			if info.VocabSize < 3 || (info.MaxPositions > 0 && info.MaxPositions < 3) {
				continue
			}
			out, err := m.Run(context.Background(), ids)
			if err != nil {
				t.Fatalf("Run after a successful Load: %v", err)
			}
			if len(out.Tensors) != len(info.Outputs) {
				t.Fatalf("%d outputs, Info says %v", len(out.Tensors), info.Outputs)
			}
			for i, o := range out.Tensors {
				n := 1
				for _, d := range o.Shape {
					n *= d
				}
				if o.Name != info.Outputs[i] || n != len(o.Data) {
					t.Fatalf("output %s shape %v with %d values", o.Name, o.Shape, len(o.Data))
				}
			}
		}
	})
}
