package artifact

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/prune"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// encoderFixtures are the f32 fixtures of MPNet and ModernBERT.
var encoderFixtures = []string{"mpnet-mlm-st", "mpnet-cls-bin", "modernbert-mlm-st", "modernbert-bias-st", "modernbert-model-st", "modernbert-cls-st"}

// heavyTailed are the fixtures whose matrices are heavy-tailed, as
// trained weights are (gen_models.py's heavy_tailed): half of the weights
// by magnitude hold little of a layer, as magnitude and N:M pruning
// assume. On plain normal random weights pruning half of them leaves
// cosines of 0.13-0.57 on these families' fixtures, which say nothing.
var heavyTailed = map[string]bool{"mpnet-mlm-st": true, "modernbert-mlm-st": true}

// convert, quantize fp16 and int8, prune --sparsity 0.5 and N:M 2:4 pass
// validation with the default thresholds of the kind the CLI uses on the
// MPNet and ModernBERT fixtures (pruning on the heavy-tailed ones).
func TestEncoderFamiliesPasses(t *testing.T) {
	var pruned *forward.Thresholds // the pruned kind's default, cosine 0.8
	passes := []namedPass{namedConvertPass, namedFp16Pass, namedInt8Pass, sparsityPass(pruned), nmPass(pruned)}
	for _, fx := range encoderFixtures {
		for _, p := range passes {
			if p.kind == forward.KindPruned && !heavyTailed[fx] {
				continue
			}
			t.Run(fx+"/"+p.name, func(t *testing.T) { runPass(t, fx, p) })
		}
	}
}

// Quantization leaves MPNet's relative position bias table alone: it is an
// embedding (a [buckets, heads] table), not a Linear layer.
func TestMPNetBiasTableNotQuantized(t *testing.T) {
	g, cfg := open(t, filepath.Join(models, "mpnet-mlm-st"))
	out, _, err := quantize.Quantize(g, cfg, quantize.Options{Scheme: quantize.Int8})
	if err != nil {
		t.Fatal(err)
	}
	name := "mpnet." + arch.MPNetRelativeAttentionBias + ".weight"
	x, ok := out.Tensor(name)
	if !ok || x.DType != weights.F32 {
		t.Fatalf("%s: %v", name, x)
	}
	if _, ok := out.Tensor(name + "_scale"); ok {
		t.Errorf("%s has int8 scales", name)
	}
}

// Structured head pruning is refused on MPNet and ModernBERT, saying why;
// FFN pruning is exact (TestPrunedEncoderFFNIsExact).
func TestEncoderHeadPruningRefused(t *testing.T) {
	for fx, want := range map[string]string{"mpnet-mlm-st": "relative_attention_bias", "modernbert-mlm-st": "hidden_size / num_attention_heads"} {
		g, cfg := open(t, filepath.Join(models, fx))
		for _, explicit := range []map[int][]int{{0: {1}}, nil} {
			perLayer := 0
			if explicit == nil {
				perLayer = 1
			}
			_, _, err := prune.Heads(g, cfg, explicit, perLayer)
			if err == nil || !strings.Contains(err.Error(), "cannot prune attention heads") || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v", fx, err)
			}
		}
	}
}

// replaced returns a pass writing g with the tensors named by f's keys
// replaced by what f returns for them.
func replaced(f func(name string, v []float32, shape []int64) []float32) Pass {
	return func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out := g.Derive()
		for _, x := range g.Tensors() {
			if x.DType.IsFloat() {
				v, err := x.Float32s()
				if err != nil {
					return nil, nil, err
				}
				if w := f(x.Name, v, x.Shape); w != nil {
					if x, err = weights.FromFloat32(x.Name, x.DType, x.Shape, w); err != nil {
						return nil, nil, err
					}
				}
			}
			if err := out.Add(x); err != nil {
				return nil, nil, err
			}
		}
		return out, nil, nil
	}
}

// withConfig returns a pass that rewrites config.json's fields.
func withConfig(fields map[string]any) Pass {
	return func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out, _, err := convert.DedupeShared(g, cfg)
		if err != nil {
			return nil, nil, err
		}
		if out.Config, err = arch.UpdateConfig(g.Config, fields); err != nil {
			return nil, nil, err
		}
		return out, nil, nil
	}
}

// Broken conversions of the new encoders' features are caught: MPNet's
// relative position bias dropped (the table zeroed, as a converter that
// maps MPNet onto BERT writes it); ModernBERT with the global RoPE base on
// the local layers (one rope_theta for all, as converters that know one
// base write it) or with no sliding window (every layer global).
func TestEncoderBrokenPassesCaught(t *testing.T) {
	for _, c := range []struct {
		name, fixture string
		pass          Pass
	}{
		{"mpnet-no-relative-bias", "mpnet-mlm-st", replaced(func(name string, v []float32, _ []int64) []float32 {
			if strings.HasSuffix(name, arch.MPNetRelativeAttentionBias+".weight") {
				return make([]float32, len(v))
			}
			return nil
		})},
		{"modernbert-global-rope-on-local", "modernbert-mlm-st", withConfig(map[string]any{"local_rope_theta": 160000.0})},
		{"modernbert-no-window", "modernbert-mlm-st", withConfig(map[string]any{"global_attn_every_n_layers": 1})},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "broken")
			res, err := Build(context.Background(), filepath.Join(models, c.fixture), dst, "convert", c.pass,
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
