package artifact

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"encoding/json"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// lowBitSchemes are the w4a16 and fp8 variants the fixtures are validated
// with: int4 in groups of 32 symmetric and asymmetric (the fixtures are
// narrow: 128 would be one group per row), per channel, and fp8.
var lowBitSchemes = []struct {
	name string
	opts quantize.Options
	kind forward.Kind
}{
	{"w4a16-g32", quantize.Options{Scheme: quantize.W4A16, GroupSize: 32}, forward.KindInt4},
	{"w4a16-g32-asym", quantize.Options{Scheme: quantize.W4A16, GroupSize: 32, Asym: true}, forward.KindInt4},
	{"w4a16-g128", quantize.Options{Scheme: quantize.W4A16, GroupSize: 128}, forward.KindInt4},
	{"fp8", quantize.Options{Scheme: quantize.FP8}, forward.KindFP8},
}

// Every f32 fixture passes validation with the default thresholds of the
// w4a16 and fp8 kinds (inferred from the artifact). Run with -v for the
// values.
func TestFixturesLowBit(t *testing.T) {
	for _, sc := range lowBitSchemes {
		for _, dir := range f32Fixtures(t) {
			if sc.kind == forward.KindInt4 && strings.Contains(filepath.Base(dir), "-cls") {
				// Random two- or three-label heads: their near-equal logits
				// change order under 4-bit weights (cosines down to -0.99),
				// which no useful default accepts.
				continue
			}
			t.Run(fmt.Sprintf("%s/%s", sc.name, filepath.Base(dir)), func(t *testing.T) {
				opts := sc.opts
				pass := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
					return quantize.Quantize(g, cfg, opts)
				}
				res, err := Build(context.Background(), dir, filepath.Join(t.TempDir(), "out"), "quantize", pass, Options{})
				if err != nil {
					t.Fatal(err)
				}
				v := res.Document.Validation
				if v.Kind != sc.kind || !v.Passed {
					t.Fatalf("kind %s passed %v: %v", v.Kind, v.Passed, v.Failures)
				}
				for _, o := range v.Outputs {
					line := fmt.Sprintf("%-15s %-26s %-18s cosine %.7f", sc.name, filepath.Base(dir), o.Name, o.Cosine)
					if o.Logits {
						line += fmt.Sprintf(" top1 %.4f KL %.3g", o.Top1Agreement, o.KLDivergence)
					}
					t.Log(line)
				}
			})
		}
	}
}

// The perplexity ratios on the text of the fixtures with a tokenizer, within
// the defaults of each kind. Run with -v for the values.
func TestFixturesLowBitPerplexity(t *testing.T) {
	for _, fx := range []struct {
		name  string
		vocab int
		bos   bool
	}{{"llama-text-st", 0, true}, {"gpt2-lm-bin", 200, false}, {"qwen2-bias-st", 0, true}, {"mistral-bin", 0, true}} {
		src := textLM
		if fx.name != "llama-text-st" {
			vocab := fx.vocab
			if vocab == 0 {
				raw, err := os.ReadFile(filepath.Join(models, fx.name, "config.json"))
				if err != nil {
					t.Fatal(err)
				}
				var c struct {
					VocabSize int `json:"vocab_size"`
				}
				if err := json.Unmarshal(raw, &c); err != nil {
					t.Fatal(err)
				}
				vocab = c.VocabSize
			}
			src = withTokenizer(t, fx.name, vocab, fx.bos)
		}
		for _, sc := range lowBitSchemes {
			t.Run(fmt.Sprintf("%s/%s", sc.name, fx.name), func(t *testing.T) {
				opts := sc.opts
				pass := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
					return quantize.Quantize(g, cfg, opts)
				}
				res, err := Build(context.Background(), src, filepath.Join(t.TempDir(), "out"), "quantize", pass, Options{})
				if err != nil {
					t.Fatal(err)
				}
				v := res.Document.Validation
				if !v.Passed || v.Text == nil || v.Text.Perplexity == nil || v.Text.Perplexity.Predictions < 1000 {
					t.Fatalf("passed %v, failures %v, text %+v", v.Passed, v.Failures, v.Text)
				}
				p := v.Text.Perplexity
				t.Logf("%-15s %-14s ppl %.6g -> %.6g ratio %.6f KL %.3g top-1 %.4f", sc.name, fx.name, p.Reference, p.Candidate, p.Ratio, p.KLDivergence, p.Top1Agreement)
			})
		}
	}
}

// A w4a16 pass whose packing swaps the two nibbles of every byte (codes
// 2k and 2k+1 exchanged) fails validation on the model trained on the text.
func TestSwappedNibblesFailValidation(t *testing.T) {
	broken := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out, rep, err := quantize.Quantize(g, cfg, quantize.Options{Scheme: quantize.W4A16, GroupSize: 32})
		if err != nil {
			return nil, nil, err
		}
		n := 0
		for _, x := range out.Tensors() {
			if !strings.HasSuffix(x.Name, ".weight_packed") {
				continue
			}
			b, err := x.Bytes()
			if err != nil {
				return nil, nil, err
			}
			swapped := make([]byte, len(b))
			for i, c := range b {
				swapped[i] = c<<4 | c>>4
			}
			out.Replace(&weights.Tensor{Name: x.Name, DType: x.DType, Shape: x.Shape, Data: weights.Memory(swapped)})
			n++
		}
		if n == 0 {
			return nil, nil, errors.New("nothing packed")
		}
		return out, rep, nil
	}
	_, err := Build(context.Background(), textLM, filepath.Join(t.TempDir(), "out"), "quantize", broken, Options{})
	if !errors.Is(err, forward.ErrValidationFailed) {
		t.Fatalf("want a validation failure, got %v", err)
	}
	t.Log(err)
}
