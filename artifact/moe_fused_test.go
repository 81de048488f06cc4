package artifact

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

// convert, quantize fp16, bf16 and int8, prune --sparsity 0.5 and 2:4 pass
// validation on the MoE fixtures in transformers 5's fused layout, as on
// their per-expert twins (the same thresholds as TestMoEPasses). Every
// pass keeps the experts fused, in their shape; the casts cast them; int8
// quantizes the attention and leaves the fused experts (not Linear
// modules, which compressed-tensors alone describes) and the routers in
// float; pruning zeroes half of the fused experts and leaves the routers
// whole.
func TestMoEFusedPasses(t *testing.T) {
	passes := []namedPass{namedConvertPass, namedFp16Pass, namedBf16Pass, namedInt8Pass, sparsityPass(&forward.Thresholds{MinCosine: 0.5}), nmPass(&forward.Thresholds{MinCosine: 0.2})}
	for _, fx := range []string{"mixtral-fused-st", "qwen3moe-fused-st", "qwen2moe-fused-f16-st", "qwen3moe-fused-bf16-st"} {
		orig, _ := open(t, filepath.Join(models, fx))
		for _, p := range passes {
			if fx == "qwen2moe-fused-f16-st" && p.name == "fp16" || fx == "qwen3moe-fused-bf16-st" && p.name == "bf16" {
				continue // already in that dtype: nothing to quantize
			}
			t.Run(fx+"/"+p.name, func(t *testing.T) {
				dst, _ := runPass(t, fx, p)
				out, _ := open(t, dst)
				var fused, attention int
				for _, x := range orig.Tensors() {
					y, ok := out.Tensor(x.Name)
					if !ok {
						t.Fatalf("%s missing", x.Name)
					}
					switch {
					case strings.HasSuffix(x.Name, ".gate.weight"):
						if !y.DType.IsFloat() || p.kind == forward.KindPruned && !sameValues(t, x, y) {
							t.Errorf("%s: router changed (%v)", x.Name, y.DType)
						}
					case strings.HasSuffix(x.Name, ".experts.gate_up_proj") || strings.HasSuffix(x.Name, ".experts.down_proj"):
						fused++
						want := x.DType
						switch p.name {
						case "fp16":
							want = weights.F16
						case "bf16":
							want = weights.BF16
						}
						if y.DType != want || !slices.Equal(y.Shape, x.Shape) {
							t.Errorf("%s: %v %v, want %v %v", x.Name, y.DType, y.Shape, want, x.Shape)
						}
						if p.kind == forward.KindPruned {
							v, err := y.Float32s()
							if err != nil {
								t.Fatal(err)
							}
							zeros := 0
							for _, f := range v {
								if f == 0 {
									zeros++
								}
							}
							if zeros != len(v)/2 {
								t.Errorf("%s: %d zeros of %d", x.Name, zeros, len(v))
							}
						}
					case strings.HasSuffix(x.Name, ".self_attn.q_proj.weight"):
						attention++
						if p.kind == forward.KindInt8 && y.DType != weights.I8 {
							t.Errorf("%s: %v, want int8", x.Name, y.DType)
						}
					}
				}
				if fused == 0 || attention == 0 {
					t.Fatalf("%d fused experts tensors, %d q_proj", fused, attention)
				}
			})
		}
	}
}

// A conversion that writes each expert's up rows before its gate rows in
// gate_up_proj (the order of llama.cpp's separate up and gate stacks, put
// back together the wrong way) loads with the right shapes and is caught
// by validation.
func TestMoEFusedSwappedGateUpCaught(t *testing.T) {
	swapped := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out := g.Derive()
		for _, x := range g.Tensors() {
			if strings.HasSuffix(x.Name, ".experts.gate_up_proj") {
				v, err := x.Float32s()
				if err != nil {
					return nil, nil, err
				}
				half := int(x.Shape[1]/2) * int(x.Shape[2])
				for e := 0; e < int(x.Shape[0]); e++ {
					gate := v[2*e*half : (2*e+1)*half]
					up := v[(2*e+1)*half : (2*e+2)*half]
					for i := range gate {
						gate[i], up[i] = up[i], gate[i]
					}
				}
				if x, err = weights.FromFloat32(x.Name, x.DType, x.Shape, v); err != nil {
					return nil, nil, err
				}
			}
			if err := out.Add(x); err != nil {
				return nil, nil, err
			}
		}
		return out, nil, nil
	}
	for _, fx := range []string{"mixtral-fused-st", "qwen3moe-fused-st"} {
		res, err := Build(context.Background(), filepath.Join(models, fx), filepath.Join(t.TempDir(), "out"), "convert", swapped,
			Options{Validate: forward.ValidateOptions{Kind: forward.KindExact}})
		if !errors.Is(err, forward.ErrValidationFailed) || res == nil || res.Published || res.Document.Passed {
			t.Errorf("%s: err %v, result %+v", fx, err, res)
		}
	}
}
