package quantize

import (
	"bytes"
	"slices"
	"testing"
)

// A checkpoint with transformers 5's fused experts is written to GGUF as
// its per-expert twin is: the same tensors, types and bytes (the experts
// stacked per projection, Mixtral's router as ffn_gate_inp).
func TestGGUFFusedExperts(t *testing.T) {
	for _, c := range []struct {
		fused, twin string
		config      map[string]any
		layers      []int
	}{
		{"mixtral-fused-st", "mixtral-st", map[string]any{"sliding_window": nil}, nil},
		{"qwen3moe-fused-st", "qwen3moe-st", map[string]any{"num_hidden_layers": 1, "mlp_only_layers": []int{}}, []int{1}},
	} {
		fg, fcfg := fixtureGraph(t, c.fused, c.config, c.layers)
		tg, tcfg := fixtureGraph(t, c.twin, c.config, c.layers)
		fm, err := GGUF(fg, fcfg, GGUFOptions{NoVocab: true, Type: "q8_0"})
		if err != nil {
			t.Fatalf("%s: %v", c.fused, err)
		}
		tm, err := GGUF(tg, tcfg, GGUFOptions{NoVocab: true, Type: "q8_0"})
		if err != nil {
			t.Fatal(err)
		}
		want := tensorsByName(tm)
		if len(fm.Tensors) != len(tm.Tensors) || len(fm.Tensors) == 0 {
			t.Fatalf("%s: %d tensors, twin %d", c.fused, len(fm.Tensors), len(tm.Tensors))
		}
		experts := 0
		for _, x := range fm.Tensors {
			w, ok := want[x.Name]
			if !ok || x.Type != w.Type || !slices.Equal(x.Dims, w.Dims) {
				t.Fatalf("%s: %s %v %v, twin's %v", c.fused, x.Name, x.Type, x.Dims, w)
			}
			a, err := x.Data.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			b, err := w.Data.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("%s: %s differs from the twin's", c.fused, x.Name)
			}
			if len(x.Dims) == 3 {
				experts++
			}
		}
		if experts == 0 {
			t.Fatalf("%s: no stacked experts", c.fused)
		}
	}
}
