package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/prune"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// convert and int8 quantization keep Phi-3's fused qkv_proj and
// gate_up_proj as they are (int8 quantizes them, as body Linears, with one
// scale per output row), and 2:4 pruning of them passes validation. 2:4
// keeps half of random weights, with none of the redundancy it relies on:
// cosines of 0.48-0.56 measured on llama-tiny-st, qwen3-st and phi3-st
// alike, so it is judged at 0.4.
func TestPhi3FusedPasses(t *testing.T) {
	src := filepath.Join(models, "phi3-st")
	for _, c := range []struct {
		name  string
		kind  forward.Kind
		pass  Pass
		th    *forward.Thresholds
		dtype weights.DType
	}{
		{"convert", forward.KindExact, func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			return convert.DedupeShared(g, cfg)
		}, nil, weights.F32},
		{"int8", forward.KindInt8, func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			return quantize.Quantize(g, cfg, quantize.Options{Scheme: quantize.Int8})
		}, nil, weights.I8},
		{"2:4", forward.KindPruned, func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			return prune.NM(g, cfg, 2, 4)
		}, &forward.Thresholds{MinCosine: 0.4}, weights.F32},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out")
			res, err := Build(context.Background(), src, dst, c.name, c.pass,
				Options{Validate: forward.ValidateOptions{Kind: c.kind, Thresholds: c.th}})
			if err != nil {
				t.Fatal(err)
			}
			if v := res.Document.Validation; !v.Passed || v.Kind != c.kind {
				t.Fatalf("validation %+v", v)
			}
			g, err := formats.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			for _, x := range []struct {
				name  string
				shape []int64
			}{
				{"model.layers.1.self_attn.qkv_proj.weight", []int64{(4 + 2*2) * 16, 64}},
				{"model.layers.1.mlp.gate_up_proj.weight", []int64{2 * 96, 64}},
			} {
				tn, ok := g.Tensor(x.name)
				if !ok || !slices.Equal(tn.Shape, x.shape) || tn.DType != c.dtype {
					t.Errorf("%s: %v", x.name, tn)
				}
			}
			for _, tn := range g.Tensors() {
				if strings.Contains(tn.Name, "q_proj") || strings.Contains(tn.Name, "gate_proj") {
					t.Errorf("split tensor %s in the output", tn.Name)
				}
			}
			if c.name == "2:4" {
				tn, _ := g.Tensor("model.layers.0.self_attn.qkv_proj.weight")
				v, _ := tn.Float32s()
				for i := 0; i < len(v); i += 4 {
					zeros := 0
					for _, f := range v[i : i+4] {
						if f == 0 {
							zeros++
						}
					}
					if zeros < 2 {
						t.Fatalf("qkv_proj inputs %d..%d keep %d of 4", i, i+3, 4-zeros)
					}
				}
			}
		})
	}
}

// FFN pruning cuts gate_up_proj's gate and up rows of the same neurons (and
// down_proj's columns): the pruned model computes exactly what the original
// computes with those neurons' down_proj columns zeroed, and its config
// (intermediate_size) loads it.
func TestPhi3FFNPruningIsExact(t *testing.T) {
	src := filepath.Join(models, "phi3-st")
	g, cfg := open(t, src)
	out, _, err := prune.FFN(g, cfg, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	const inter, hidden = 96, 64
	ref := g
	for layer := 0; layer < cfg.Params.Sizes().Layers; layer++ {
		name := fmt.Sprintf("model.layers.%d.mlp.gate_up_proj.weight", layer)
		full, _ := g.Tensor(name)
		kept, _ := out.Tensor(name)
		if !slices.Equal(kept.Shape, []int64{inter, hidden}) {
			t.Fatalf("%s: shape %v", name, kept.Shape)
		}
		fv, _ := full.Float32s()
		kv, _ := kept.Float32s()
		row := func(v []float32, r int) []float32 { return v[r*hidden : (r+1)*hidden] }
		// The kept gate rows (first half) are original gate rows in order;
		// the up rows (second half) are the up rows of the same neurons.
		var dropped []int
		next := 0
		for r := 0; r < inter; r++ {
			if next < inter/2 && slices.Equal(row(fv, r), row(kv, next)) {
				if !slices.Equal(row(fv, inter+r), row(kv, inter/2+next)) {
					t.Fatalf("layer %d: neuron %d keeps its gate row but not its up row", layer, r)
				}
				next++
				continue
			}
			dropped = append(dropped, r)
		}
		if next != inter/2 {
			t.Fatalf("layer %d: kept gate rows are not rows of the original in order", layer)
		}
		ref = zeroed(t, ref, fmt.Sprintf("model.layers.%d.mlp.down_proj.weight", layer), 1, dropped)
	}
	rep, err := forward.Validate(context.Background(), run(t, ref), run(t, out), forward.ValidateOptions{Kind: forward.KindExact})
	if err != nil || !rep.Passed {
		t.Fatalf("%v %v", err, rep.Failures)
	}
}

// Head pruning of Phi-3 is refused with the reason: its config cannot
// describe fewer heads.
func TestPhi3HeadPruningRefused(t *testing.T) {
	g, cfg := open(t, filepath.Join(models, "phi3-st"))
	_, _, err := prune.Heads(g, cfg, nil, 2)
	if err == nil || !strings.Contains(err.Error(), "Phi3ForCausalLM: cannot prune attention heads") ||
		!strings.Contains(err.Error(), "hidden_size / num_attention_heads") {
		t.Fatalf("err = %v", err)
	}
}

// Conversions that lose Phi-3's rotary settings are caught by validation:
// original_max_position_embeddings dropped (the default 4096: the short
// factors used past the original length and another attention factor),
// long_factor overwritten with short_factor (a runtime that knows one set),
// and partial_rotary_factor dropped with the factors padded with ones
// (rotary over the whole head).
func TestPhi3BrokenRoPECaught(t *testing.T) {
	src := filepath.Join(models, "phi3-st")
	_, cfg := open(t, src)
	p := cfg.Phi3()
	if p.LongRoPE == nil || p.RotaryDim == p.HeadDim || p.OriginalMaxPositionEmbeddings >= 21 {
		t.Fatal("fixture changed")
	}
	pad := func(f []float64) []float64 {
		out := slices.Clone(f)
		for len(out) < p.HeadDim/2 {
			out = append(out, 1)
		}
		return out
	}
	rs := func(short, long []float64) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"type": "longrope", "short_factor": short, "long_factor": long})
		return b
	}
	for _, c := range []struct {
		name   string
		fields map[string]any
	}{
		{"no-original-max", map[string]any{"original_max_position_embeddings": nil}},
		{"short-for-long", map[string]any{"rope_scaling": rs(p.LongRoPE.ShortFactor, p.LongRoPE.ShortFactor)}},
		{"full-rotary", map[string]any{"partial_rotary_factor": nil,
			"rope_scaling": rs(pad(p.LongRoPE.ShortFactor), pad(p.LongRoPE.LongFactor))}},
	} {
		t.Run(c.name, func(t *testing.T) {
			broken := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
				out, _, err := convert.DedupeShared(g, cfg)
				if err != nil {
					return nil, nil, err
				}
				if out.Config, err = arch.UpdateConfig(g.Config, c.fields); err != nil {
					return nil, nil, err
				}
				return out, nil, nil
			}
			dst := filepath.Join(t.TempDir(), "broken")
			res, err := Build(context.Background(), src, dst, "convert", broken, Options{Validate: forward.ValidateOptions{Kind: forward.KindExact}})
			if !errors.Is(err, forward.ErrValidationFailed) {
				t.Fatalf("err = %v", err)
			}
			if res == nil || res.Published || res.Document.Passed {
				t.Fatalf("result %+v", res)
			}
		})
	}
}
