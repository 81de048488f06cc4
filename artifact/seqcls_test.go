package artifact

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

// seqClsFixtures are the decoder sequence-classification fixtures.
var seqClsFixtures = []string{"llama-cls-st", "qwen3-cls-bin", "gpt2-cls-st", "gemma2-cls-st", "gemma3-cls-st"}

// convert, quantize fp16 and int8 and prune --sparsity 0.5 pass validation
// on the decoder sequence classifiers; int8 leaves the score head in float,
// as it leaves the encoders' classifiers. The cosine of two to four logits
// after pruning half of random weights says nothing (0.36 measured on
// qwen3-cls-bin), so pruning is judged by the KL divergence of the label
// distributions (0.027 measured at most).
func TestSeqClassifierPasses(t *testing.T) {
	passes := []namedPass{namedConvertPass, namedFp16Pass, namedInt8Pass, sparsityPass(&forward.Thresholds{MaxKL: 0.1})}
	for _, fx := range seqClsFixtures {
		for _, p := range passes {
			t.Run(fx+"/"+p.name, func(t *testing.T) {
				dst, v := runPass(t, fx, p)
				if len(v.Outputs) != 2 || v.Reference.NumLabels == 0 {
					t.Fatalf("outputs %d, labels %d", len(v.Outputs), v.Reference.NumLabels)
				}
				if (v.Reference.PadTokenID != nil) != (v.PaddedInputs > 0) {
					t.Errorf("pad %v, %d padded inputs", v.Reference.PadTokenID, v.PaddedInputs)
				}
				if p.name == "int8" {
					g, err := formats.Open(dst)
					if err != nil {
						t.Fatal(err)
					}
					defer g.Close()
					if x, ok := g.Tensor(arch.DecoderClassifier + ".weight"); !ok || x.DType != weights.F32 {
						t.Errorf("score.weight after int8: %v", x)
					}
				}
			})
		}
	}
}

// A conversion that loses pad_token_id (the head then reads the last
// position whatever it holds) is caught: validation runs right-padded
// inputs for a head with a pad token.
func TestSeqClassifierLostPadCaught(t *testing.T) {
	lost := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out, changes, err := convert.DedupeShared(g, cfg)
		if err != nil {
			return nil, nil, err
		}
		if out.Config, err = arch.UpdateConfig(g.Config, map[string]any{"pad_token_id": nil}); err != nil {
			return nil, nil, err
		}
		return out, changes, nil
	}
	for _, fx := range []string{"llama-cls-st", "qwen3-cls-bin", "gemma2-cls-st"} {
		t.Run(fx, func(t *testing.T) {
			res, err := Build(context.Background(), filepath.Join(models, fx), filepath.Join(t.TempDir(), "broken"), "convert", lost,
				Options{Validate: forward.ValidateOptions{Kind: forward.KindExact}})
			if !errors.Is(err, forward.ErrValidationFailed) {
				t.Fatalf("err = %v", err)
			}
			v := res.Document.Validation
			if len(v.Failures) == 0 || !strings.HasPrefix(v.Failures[0], "logits:") {
				t.Errorf("failures %v, want the logits'", v.Failures)
			}
			t.Logf("%s: %v", fx, v.Failures)
		})
	}
}

// Structured head and FFN pruning of a decoder sequence classifier
// computes exactly what the original computes with the dropped heads' and
// neurons' output columns zeroed (the score head untouched).
func TestPrunedSeqClassifierLayersAreExact(t *testing.T) {
	for _, fx := range []string{"qwen3-cls-bin", "gemma2-cls-st"} {
		t.Run(fx, func(t *testing.T) { checkPrunedLlamaLayers(t, fx) })
	}
}
