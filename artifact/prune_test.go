package artifact

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/prune"
	"github.com/hubmirror/hubmirror/weights"
)

// zeroed returns g with the given indices along axis of one tensor set to
// zero: the original model with some heads or neurons switched off, which a
// correct structured pruning must reproduce exactly.
func zeroed(t *testing.T, g *weights.Graph, name string, axis int, idx []int) *weights.Graph {
	t.Helper()
	out := g.Derive()
	for _, x := range g.Tensors() {
		if x.Name != name {
			out.Add(x)
			continue
		}
		v, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		cols := int(x.Shape[1])
		for i := range v {
			k := i / cols
			if axis == 1 {
				k = i % cols
			}
			if slices.Contains(idx, k) {
				v[i] = 0
			}
		}
		z, err := weights.FromFloat32(x.Name, x.DType, x.Shape, v)
		if err != nil {
			t.Fatal(err)
		}
		out.Add(z)
	}
	return out
}

func span(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

func open(t *testing.T, dir string) (*weights.Graph, *arch.Config) {
	t.Helper()
	g, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	return g, cfg
}

func run(t *testing.T, g *weights.Graph) *forward.Model {
	t.Helper()
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	m, err := forward.Load(g, cfg, forward.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Removing a head computes exactly what the original computes with that
// head's output projection zeroed; the pruned model is written, read back
// and run from its files (pruned_heads in config.json for BERT and GPT-2,
// fewer heads for Llama), and so loads as an ordinary model.
func TestPrunedHeadsAreExact(t *testing.T) {
	for _, c := range []struct {
		model   string
		heads   map[int][]int
		zeroT   string
		axis    int
		zeroIdx []int
	}{
		// bert-bin: hidden 32, 4 heads of 8. Head 1 of layer 0.
		{"bert-bin", map[int][]int{0: {1}}, "encoder.layer.0.attention.output.dense.weight", 1, span(8, 8)},
		// gpt2-lm-bin: Conv1D c_proj [in, out]: head 2 of layer 1 is rows 16..23.
		{"gpt2-lm-bin", map[int][]int{1: {2}}, "transformer.h.1.attn.c_proj.weight", 0, span(16, 8)},
		// distilbert-mlm-st: dim 32, 4 heads of 8, out_lin. Head 3 of layer 0.
		{"distilbert-mlm-st", map[int][]int{0: {3}}, "distilbert.transformer.layer.0.attention.out_lin.weight", 1, span(24, 8)},
		// roberta-cls-bin: BERT's layers under roberta., pruned_heads as BERT's.
		{"roberta-cls-bin", map[int][]int{1: {0, 3}}, "roberta.encoder.layer.1.attention.output.dense.weight", 1, append(span(0, 8), span(24, 8)...)},
	} {
		t.Run(c.model, func(t *testing.T) {
			src := filepath.Join(models, c.model)
			g, cfg := open(t, src)
			if cfg.Bert() == nil && cfg.GPT2() == nil && cfg.Roberta() == nil && cfg.DistilBert() == nil {
				t.Fatal("fixture changed family")
			}
			ref := run(t, zeroed(t, g, c.zeroT, c.axis, c.zeroIdx))
			pass := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
				return prune.Heads(g, cfg, c.heads, 0)
			}
			dst := filepath.Join(t.TempDir(), "pruned")
			th := forward.Thresholds{MinCosine: 0.5}
			if _, err := Build(context.Background(), src, dst, "prune heads", pass, Options{Validate: forward.ValidateOptions{Kind: forward.KindPruned, Thresholds: &th}}); err != nil {
				t.Fatal(err)
			}
			pg, _ := open(t, dst)
			rep, err := forward.Validate(context.Background(), ref, run(t, pg), forward.ValidateOptions{Kind: forward.KindExact})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Passed {
				t.Fatalf("pruned model differs from the zeroed original: %v", rep.Failures)
			}
		})
	}
}

// Head and FFN pruning of the Llama layers computes exactly what the
// original computes with the dropped heads' and neurons' output columns
// zeroed: llama-gqa-bin (8 heads, 2 KV heads, head_dim from the config) and
// qwen3-st (4 heads, 2 KV heads, head_dim 16 wider than hidden / heads,
// q_norm and k_norm over each head, which pruning leaves as they are),
// gemma2-st and gemma3-st (query_pre_attn_scalar, not the head count,
// scales their scores).
func TestPrunedLlamaHeadsAndFFNAreExact(t *testing.T) {
	for _, fx := range []string{"llama-gqa-bin", "qwen3-st", "gemma2-st", "gemma3-st"} {
		t.Run(fx, func(t *testing.T) { checkPrunedLlamaLayers(t, fx) })
	}
}

func checkPrunedLlamaLayers(t *testing.T, fx string) {
	src := filepath.Join(models, fx)
	g, cfg := open(t, src)
	l := cfg.Params.Sizes()
	if l.HeadDim == 0 || l.KVHeads == l.Heads {
		t.Fatal("fixture changed")
	}
	group, hd := l.Heads/l.KVHeads, l.HeadDim
	var ref *weights.Graph = g
	for layer := 0; layer < l.Layers; layer++ { // KV group 1 in every layer
		ref = zeroed(t, ref, fmt.Sprintf("model.layers.%d.self_attn.o_proj.weight", layer), 1, span(group*hd, group*hd))
	}
	heads := map[int][]int{}
	for layer := 0; layer < l.Layers; layer++ {
		heads[layer] = span(group, group)
	}
	out, _, err := prune.Heads(g, cfg, heads, 0)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := forward.Validate(context.Background(), run(t, ref), run(t, out), forward.ValidateOptions{Kind: forward.KindExact})
	if err != nil || !rep.Passed {
		t.Fatalf("%v %v", err, rep.Failures)
	}

	// FFN: the neurons FFN drops are the ones whose down_proj columns,
	// zeroed in the original, leave the outputs unchanged.
	out, _, err = prune.FFN(g, cfg, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	ref = g
	for layer := 0; layer < l.Layers; layer++ {
		up, _ := g.Tensor(fmt.Sprintf("model.layers.%d.mlp.up_proj.weight", layer))
		kept, _ := out.Tensor(fmt.Sprintf("model.layers.%d.mlp.up_proj.weight", layer))
		uv, _ := up.Float32s()
		kv, _ := kept.Float32s()
		in := int(up.Shape[1])
		var dropped []int
		next := 0
		for r := 0; r < int(up.Shape[0]); r++ {
			if next < int(kept.Shape[0]) && slices.Equal(uv[r*in:(r+1)*in], kv[next*in:(next+1)*in]) {
				next++
				continue
			}
			dropped = append(dropped, r)
		}
		if next != int(kept.Shape[0]) || len(dropped) != int(up.Shape[0])/2 {
			t.Fatalf("layer %d: kept rows are not rows of the original in order", layer)
		}
		ref = zeroed(t, ref, fmt.Sprintf("model.layers.%d.mlp.down_proj.weight", layer), 1, dropped)
	}
	rep, err = forward.Validate(context.Background(), run(t, ref), run(t, out), forward.ValidateOptions{Kind: forward.KindExact})
	if err != nil || !rep.Passed {
		t.Fatalf("FFN: %v %v", err, rep.Failures)
	}
}

// FFN pruning of the encoder families computes exactly what the original
// computes with the dropped neurons' output columns zeroed, and the pruned
// model's config (intermediate_size, DistilBERT's hidden_dim) loads it.
func TestPrunedEncoderFFNIsExact(t *testing.T) {
	for _, c := range []struct{ model, up, down string }{
		{"roberta-cls-bin", "roberta.encoder.layer.%d.intermediate.dense.weight", "roberta.encoder.layer.%d.output.dense.weight"},
		{"distilbert-mlm-st", "distilbert.transformer.layer.%d.ffn.lin1.weight", "distilbert.transformer.layer.%d.ffn.lin2.weight"},
		{"mpnet-mlm-st", "mpnet.encoder.layer.%d.intermediate.dense.weight", "mpnet.encoder.layer.%d.output.dense.weight"},
		// ModernBERT's Wi holds the input and gate halves: a neuron goes
		// from both (the dropped rows below I are the neurons; their
		// gate rows, I higher, lie beyond Wo's columns).
		{"modernbert-bias-st", "model.layers.%d.mlp.Wi.weight", "model.layers.%d.mlp.Wo.weight"},
	} {
		t.Run(c.model, func(t *testing.T) {
			g, cfg := open(t, filepath.Join(models, c.model))
			out, _, err := prune.FFN(g, cfg, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			ref := g
			for layer := 0; layer < cfg.Params.Sizes().Layers; layer++ {
				up, _ := g.Tensor(fmt.Sprintf(c.up, layer))
				kept, ok := out.Tensor(fmt.Sprintf(c.up, layer))
				if !ok {
					t.Fatalf("no %s", fmt.Sprintf(c.up, layer))
				}
				uv, _ := up.Float32s()
				kv, _ := kept.Float32s()
				in := int(up.Shape[1])
				var dropped []int
				next := 0
				for r := 0; r < int(up.Shape[0]); r++ {
					if next < int(kept.Shape[0]) && slices.Equal(uv[r*in:(r+1)*in], kv[next*in:(next+1)*in]) {
						next++
						continue
					}
					dropped = append(dropped, r)
				}
				if next != int(kept.Shape[0]) || len(dropped) != int(up.Shape[0])/2 {
					t.Fatalf("layer %d: kept rows are not rows of the original in order", layer)
				}
				ref = zeroed(t, ref, fmt.Sprintf(c.down, layer), 1, dropped)
			}
			rep, err := forward.Validate(context.Background(), run(t, ref), run(t, out), forward.ValidateOptions{Kind: forward.KindExact})
			if err != nil || !rep.Passed {
				t.Fatalf("%v %v", err, rep.Failures)
			}
		})
	}
}
