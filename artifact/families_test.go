package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

// familyFixtures are the f32 fixtures of the families added after BERT,
// GPT-2 and Llama, one or more per family and head.
var familyFixtures = []string{"roberta-mlm-st", "camembert-mlm-bin", "roberta-cls-bin", "xlmr-model-st", "distilbert-mlm-st", "distilbert-cls-bin", "distilbert-model-st", "qwen3-st", "gemma-st", "gemma2-st", "gemma3-st", "phi3-st", "phi3-bf16-st"}

// convert, quantize fp16 and int8, and prune --sparsity 0.5 pass
// validation (each with the kind the CLI uses) on every new family's
// fixtures. Random tiny weights have none of the redundancy magnitude
// pruning relies on: half of them gone leaves cosines of 0.67-0.77 on
// these fixtures and on llama-tiny-st alike, under the pruned kind's
// default 0.8, so pruning is judged at 0.5, as TestPrunedHeadsAreExact
// judges its pass.
func TestFamiliesPasses(t *testing.T) {
	passes := []namedPass{namedConvertPass, namedFp16Pass, namedInt8Pass, sparsityPass(&forward.Thresholds{MinCosine: 0.5})}
	for _, fx := range familyFixtures {
		for _, p := range passes {
			if fx == "distilbert-cls-bin" && p.kind == forward.KindPruned {
				// Its output is two logits: their cosine after pruning half
				// of random weights says nothing (-0.66 measured); the
				// family's other two fixtures are pruned below.
				continue
			}
			t.Run(fx+"/"+p.name, func(t *testing.T) { runPass(t, fx, p) })
		}
	}
}

// A conversion that numbers RoBERTa's positions from 0, as BERT does (the
// position table shifted by pad_token_id+1 rows), is caught.
func TestRobertaPositionsFromZeroCaught(t *testing.T) {
	src := filepath.Join(models, "roberta-mlm-st")
	broken := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out := g.Derive()
		off := cfg.Roberta().PadTokenID + 1
		for _, x := range g.Tensors() {
			if x.Name == "roberta."+arch.BertPositionEmbeddings+".weight" {
				v, err := x.Float32s()
				if err != nil {
					return nil, nil, err
				}
				d := int(x.Shape[1])
				shifted := make([]float32, len(v))
				copy(shifted, v[off*d:])
				if x, err = weights.FromFloat32(x.Name, x.DType, x.Shape, shifted); err != nil {
					return nil, nil, err
				}
			}
			if err := out.Add(x); err != nil {
				return nil, nil, err
			}
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
}

// A conversion that maps DistilBERT's norms the wrong way round (each
// layer's sa_layer_norm written as output_layer_norm and back, as a
// BERT-name mapping that confuses attention.output.LayerNorm with
// output.LayerNorm would) is caught.
func TestDistilBertSwappedNormsCaught(t *testing.T) {
	src := filepath.Join(models, "distilbert-mlm-st")
	broken := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out := g.Derive()
		for _, x := range g.Tensors() {
			name := x.Name
			switch {
			case strings.Contains(name, "."+arch.DistilBertAttentionNorm+"."):
				name = strings.Replace(name, arch.DistilBertAttentionNorm, arch.DistilBertOutputNorm, 1)
			case strings.Contains(name, "."+arch.DistilBertOutputNorm+"."):
				name = strings.Replace(name, arch.DistilBertOutputNorm, arch.DistilBertAttentionNorm, 1)
			}
			if name != x.Name {
				v, err := x.Float32s()
				if err != nil {
					return nil, nil, err
				}
				if x, err = weights.FromFloat32(name, x.DType, x.Shape, v); err != nil {
					return nil, nil, err
				}
			}
			if err := out.Add(x); err != nil {
				return nil, nil, err
			}
		}
		return out, nil, nil
	}
	dst := filepath.Join(t.TempDir(), "broken")
	_, err := Build(context.Background(), src, dst, "convert", broken, Options{Validate: forward.ValidateOptions{Kind: forward.KindExact}})
	if !errors.Is(err, forward.ErrValidationFailed) {
		t.Fatalf("err = %v", err)
	}
}

// A conversion that skips Qwen3's q_norm (a converter that knows only
// Qwen2's tensors) is caught: transformers initializes the missing weights
// to ones, which is what the broken pass writes. Writing the model as
// Qwen2 outright (model_type renamed, q_norm and k_norm dropped) is
// refused as another family.
func TestQwen3SkippedQNormCaught(t *testing.T) {
	src := filepath.Join(models, "qwen3-st")
	skipped := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out := g.Derive()
		for _, x := range g.Tensors() {
			if strings.HasSuffix(x.Name, "."+arch.Qwen3QNorm+".weight") {
				ones := make([]float32, x.Shape[0])
				for i := range ones {
					ones[i] = 1
				}
				var err error
				if x, err = weights.FromFloat32(x.Name, x.DType, x.Shape, ones); err != nil {
					return nil, nil, err
				}
			}
			if err := out.Add(x); err != nil {
				return nil, nil, err
			}
		}
		return out, nil, nil
	}
	asQwen2 := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out := g.Derive()
		for _, x := range g.Tensors() {
			if strings.Contains(x.Name, "."+arch.Qwen3QNorm+".") || strings.Contains(x.Name, "."+arch.Qwen3KNorm+".") {
				continue
			}
			if err := out.Add(x); err != nil {
				return nil, nil, err
			}
		}
		c, err := arch.UpdateConfig(g.Config, map[string]any{"model_type": "qwen2", "architectures": []string{"Qwen2ForCausalLM"}})
		if err != nil {
			return nil, nil, err
		}
		out.Config = c
		return out, nil, nil
	}
	for _, c := range []struct {
		name string
		pass Pass
		want error
	}{{"skipped-q-norm", skipped, forward.ErrValidationFailed}, {"as-qwen2", asQwen2, forward.ErrIncompatible}} {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "broken")
			res, err := Build(context.Background(), src, dst, "convert", c.pass, Options{Validate: forward.ValidateOptions{Kind: forward.KindExact}})
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v", err)
			}
			if res != nil && (res.Published || res.Document.Passed) {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// A conversion that drops Gemma 2's soft-capping (attn_logit_softcapping
// and final_logit_softcapping written as null, as converters for runtimes
// without it do) is caught.
func TestGemmaNoSoftcappingCaught(t *testing.T) {
	src := filepath.Join(models, "gemma2-st")
	broken := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		if cfg.Gemma().AttnLogitSoftcapping == 0 || cfg.Gemma().FinalLogitSoftcapping == 0 {
			return nil, nil, errors.New("fixture has no soft-capping")
		}
		out, _, err := convert.DedupeShared(g, cfg)
		if err != nil {
			return nil, nil, err
		}
		c, err := arch.UpdateConfig(g.Config, map[string]any{"attn_logit_softcapping": json.RawMessage("null"),
			"final_logit_softcapping": json.RawMessage("null")})
		if err != nil {
			return nil, nil, err
		}
		out.Config = c
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
}
