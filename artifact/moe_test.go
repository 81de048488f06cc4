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
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/prune"
	"github.com/hubmirror/hubmirror/weights"
)

// moePassFixtures are the MoE fixtures every pass is validated on: the f32
// one of each family and two half-precision ones (a pickle with a tied
// head among them).
var moePassFixtures = []string{"mixtral-st", "qwen2moe-st", "qwen3moe-st", "qwen2moe-f16-st", "mixtral-bf16-bin"}

// convert, quantize fp16, bf16 and int8, prune --sparsity 0.5 and 2:4 pass
// validation (each with the kind the CLI uses) on the MoE families. int8
// quantizes every expert (and shared expert, and dense MLP) and keeps the
// routers float; pruning leaves the routers whole. Magnitude pruning is
// judged at a cosine of 0.5 as TestFamiliesPasses judges it (random
// weights), 2:4 at 0.2: it leaves cosines of 0.26-0.54 on these fixtures,
// as it leaves 0.42-0.52 on the dense llama-tiny-st and qwen3-st
// (hubmirror prune --pattern 2:4 --min-cosine 0.01 --json).
func TestMoEPasses(t *testing.T) {
	passes := []namedPass{namedConvertPass, namedFp16Pass, namedBf16Pass, namedInt8Pass, sparsityPass(&forward.Thresholds{MinCosine: 0.5}), nmPass(&forward.Thresholds{MinCosine: 0.2})}
	for _, fx := range moePassFixtures {
		src := filepath.Join(models, fx)
		orig, _ := open(t, src)
		for _, p := range passes {
			if fx == "qwen2moe-f16-st" && p.name == "fp16" || fx == "mixtral-bf16-bin" && p.name == "bf16" {
				continue // already in that dtype: nothing to quantize
			}
			t.Run(fx+"/"+p.name, func(t *testing.T) {
				dst, _ := runPass(t, fx, p)
				out, _ := open(t, dst)
				var routers, experts int
				for _, x := range orig.Tensors() {
					y, ok := out.Tensor(x.Name)
					if !ok {
						t.Fatalf("%s missing", x.Name)
					}
					isRouter := strings.HasSuffix(x.Name, ".gate.weight") || strings.HasSuffix(x.Name, ".shared_expert_gate.weight")
					switch {
					case isRouter:
						routers++
						if !y.DType.IsFloat() || p.kind == forward.KindPruned && !sameValues(t, x, y) {
							t.Errorf("%s: router changed (%v)", x.Name, y.DType)
						}
					case strings.Contains(x.Name, ".experts."):
						experts++
						if p.kind == forward.KindInt8 && y.DType != weights.I8 {
							t.Errorf("%s: %v, want int8", x.Name, y.DType)
						}
					}
				}
				if routers == 0 || experts == 0 {
					t.Fatalf("%d routers, %d expert weights", routers, experts)
				}
			})
		}
	}
}

func sameValues(t *testing.T, a, b *weights.Tensor) bool {
	t.Helper()
	av, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	bv, err := b.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range av {
		if av[i] != bv[i] {
			return false
		}
	}
	return len(av) == len(bv)
}

// A conversion that loses the renormalization of the top-k routing
// probabilities (norm_topk_prob written false, as a converter for a runtime
// that only knows Qwen2-MoE's default does) is caught, and so is one that
// adds it where the model has none.
func TestMoEUnrenormalizedRoutingCaught(t *testing.T) {
	for _, c := range []struct {
		fixture string
		norm    bool
	}{{"qwen3moe-st", false}, {"qwen2moe-f16-st", false}, {"qwen2moe-st", true}} {
		t.Run(c.fixture, func(t *testing.T) {
			broken := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
				out, _, err := convert.DedupeShared(g, cfg)
				if err != nil {
					return nil, nil, err
				}
				if out.Config, err = arch.UpdateConfig(g.Config, map[string]any{"norm_topk_prob": c.norm}); err != nil {
					return nil, nil, err
				}
				return out, nil, nil
			}
			dst := filepath.Join(t.TempDir(), "broken")
			res, err := Build(context.Background(), filepath.Join(models, c.fixture), dst, "convert", broken,
				Options{Validate: forward.ValidateOptions{Kind: forward.KindExact}})
			if !errors.Is(err, forward.ErrValidationFailed) {
				t.Fatalf("err = %v", err)
			}
			if res == nil || res.Published || res.Document.Passed {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// Head pruning of the MoE families computes exactly what the original
// computes with the dropped heads' output columns zeroed (Qwen2-MoE's q/k/v
// biases cut with them, Qwen3-MoE's per-head q/k norms left whole).
func TestPrunedMoEHeads(t *testing.T) {
	for _, fx := range []string{"mixtral-st", "qwen2moe-st", "qwen3moe-st"} {
		t.Run(fx, func(t *testing.T) {
			g, cfg := open(t, filepath.Join(models, fx))
			l := cfg.Params.Sizes()
			group, hd := l.Heads/l.KVHeads, l.HeadDim
			ref := g
			heads := map[int][]int{}
			for layer := 0; layer < l.Layers; layer++ { // KV group 1 in every layer
				ref = zeroed(t, ref, fmt.Sprintf("model.layers.%d.self_attn.o_proj.weight", layer), 1, span(group*hd, group*hd))
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
		})
	}
}

// FFN pruning of the MoE families keeps the same number of neurons in every
// expert (each its own), shared expert and dense MLP, writes each width to
// its config field, and computes exactly what the original computes with
// the dropped neurons' down-projection columns zeroed (routing unchanged).
func TestPrunedMoEFFNIsExact(t *testing.T) {
	for _, c := range []struct {
		fx     string
		fields map[string]float64
	}{
		{"mixtral-st", map[string]float64{"intermediate_size": 24}},
		{"qwen2moe-st", map[string]float64{"moe_intermediate_size": 12, "shared_expert_intermediate_size": 20, "intermediate_size": 24}},
		{"qwen3moe-st", map[string]float64{"moe_intermediate_size": 8, "intermediate_size": 24}},
		{"qwen2moe-f16-st", map[string]float64{"moe_intermediate_size": 8, "shared_expert_intermediate_size": 16, "intermediate_size": 24}},
	} {
		t.Run(c.fx, func(t *testing.T) {
			g, cfg := open(t, filepath.Join(models, c.fx))
			out, rep, err := prune.FFN(g, cfg, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(out.Config, &doc); err != nil {
				t.Fatal(err)
			}
			for f, want := range c.fields {
				if doc[f] != want {
					t.Errorf("%s = %v, want %v (report %v)", f, doc[f], want, rep.Config)
				}
			}
			ref := g
			mlps := 0
			for _, up := range g.Tensors() {
				var down string
				switch {
				case strings.HasSuffix(up.Name, ".w3.weight"):
					down = strings.TrimSuffix(up.Name, "w3.weight") + "w2.weight"
				case strings.HasSuffix(up.Name, ".up_proj.weight"):
					down = strings.TrimSuffix(up.Name, "up_proj.weight") + "down_proj.weight"
				default:
					continue
				}
				kept, ok := out.Tensor(up.Name)
				if !ok || kept.Shape[0] != up.Shape[0]/2 {
					t.Fatalf("%s: %v", up.Name, kept)
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
				if next != int(kept.Shape[0]) {
					t.Fatalf("%s: kept rows are not rows of the original in order", up.Name)
				}
				ref = zeroed(t, ref, down, 1, dropped)
				mlps++
			}
			if mlps < 4 {
				t.Fatalf("%d MLPs", mlps)
			}
			rep2, err := forward.Validate(context.Background(), run(t, ref), run(t, out), forward.ValidateOptions{Kind: forward.KindExact})
			if err != nil || !rep2.Passed {
				t.Fatalf("%v %v", err, rep2.Failures)
			}
		})
	}
}
