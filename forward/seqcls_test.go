package forward

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// seqClsFixtures are the decoder sequence-classification fixtures, with the
// pad token of each (-1: none) and the position its head reads.
var seqClsFixtures = []struct {
	name      string
	labels    int
	pad, read int
}{
	{"llama-cls-st", 3, 0, 13},
	{"qwen3-cls-bin", 2, 7, 15},
	{"gpt2-cls-st", 2, -1, 12},
	{"gemma2-cls-st", 4, 0, 10},
	{"gemma3-cls-st", 2, 0, 8},
}

// The fixtures' heads: Info names the labels and the pad token, logits are
// [1, num_labels] (TestFixtures compares their values), and the ids of
// each fixture put pads after the position read, so that reading the last
// position instead gives other logits.
func TestDecoderSequenceClassification(t *testing.T) {
	for _, fx := range seqClsFixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := filepath.Join(fixtures, fx.name)
			m := loadModel(t, dir, 2)
			info := m.Info()
			if info.NumLabels != fx.labels || !slices.Equal(info.Outputs, []string{OutputLastHiddenState, OutputLogits}) {
				t.Errorf("Info %+v", info)
			}
			if (fx.pad < 0) != (info.PadTokenID == nil) || (fx.pad >= 0 && *info.PadTokenID != fx.pad) {
				t.Errorf("PadTokenID %v, want %d", info.PadTokenID, fx.pad)
			}
			ids, want := expected(t, dir)
			wv, err := want[OutputLogits].Float32s()
			if err != nil {
				t.Fatal(err)
			}
			h := &seqClassifier{pad: fx.pad, hasPad: fx.pad >= 0}
			if got := h.position(ids); got != fx.read {
				t.Errorf("position %d, want %d (ids %v)", got, fx.read, ids)
			}
			if fx.pad < 0 {
				return
			}
			// The same model without pad_token_id reads the last position.
			g := openGraph(t, dir)
			cfg, err := arch.UpdateConfig(g.Config, map[string]any{"pad_token_id": nil})
			if err != nil {
				t.Fatal(err)
			}
			g.Config = cfg
			last, err := Load(g, nil, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			out, err := last.Run(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := out.Get(OutputLogits)
			if d := maxAbsDiff(got.Data, wv); !(d > 1e-2) {
				t.Errorf("the last position's logits are within %g of the expected ones: the fixture does not test the pad rule", d)
			}
		})
	}
}

// transformers' rule: the rightmost id that is not the pad, 0 when every
// id is one; the last id without a pad token.
func TestSeqClassifierPosition(t *testing.T) {
	h := &seqClassifier{pad: 5, hasPad: true}
	for _, c := range []struct {
		ids  []int
		want int
	}{
		{[]int{1, 2, 3}, 2}, {[]int{1, 2, 5}, 1}, {[]int{5, 2, 5, 5}, 1}, {[]int{1, 5, 5}, 0},
		{[]int{5, 5, 5}, 0}, {[]int{5}, 0}, {[]int{5, 1}, 1},
	} {
		if got := h.position(c.ids); got != c.want {
			t.Errorf("position(%v) = %d, want %d", c.ids, got, c.want)
		}
	}
	h = &seqClassifier{}
	if got := h.position([]int{0, 0, 0}); got != 2 {
		t.Errorf("no pad: position %d, want 2", got)
	}
}

// RunBatch gives each sequence the logits Run gives it, the pads of each
// found in its own ids.
func TestSeqClassifierBatch(t *testing.T) {
	m := loadModel(t, filepath.Join(fixtures, "qwen3-cls-bin"), 2)
	ids, _ := expected(t, filepath.Join(fixtures, "qwen3-cls-bin"))
	inputs := [][]int{ids, ids[:12], append(slices.Clone(ids[:9]), 7, 7)}
	batch, err := m.RunBatch(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		one, err := m.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := one.Get(OutputLogits)
		b, _ := batch[i].Get(OutputLogits)
		if d := maxAbsDiff(a.Data, b.Data); !(d <= 1e-6) || !slices.Equal(a.Shape, []int{1, 2}) {
			t.Errorf("sequence %d: shape %v, Run and RunBatch differ by %g", i, a.Shape, d)
		}
	}
}

// A malformed head or config is refused by name.
func TestSeqClassifierErrors(t *testing.T) {
	dir := filepath.Join(fixtures, "llama-cls-st")
	for _, c := range []struct {
		name   string
		drop   func(string) bool
		swap   func(*weights.Tensor) *weights.Tensor
		config map[string]any
		want   error
		msg    string
	}{
		{name: "no score", drop: func(n string) bool { return n == "score.weight" }, want: ErrWeights, msg: "score.weight"},
		{name: "labels", config: map[string]any{"id2label": map[string]string{"0": "A", "1": "B"}, "num_labels": 2}, want: ErrWeights, msg: "names 2 labels"},
		{name: "pad not an integer", config: map[string]any{"pad_token_id": "x"}, want: arch.ErrConfig, msg: "pad_token_id"},
		{name: "wrong width", swap: func(x *weights.Tensor) *weights.Tensor {
			if x.Name != "score.weight" {
				return nil
			}
			r, _ := weights.FromFloat32(x.Name, weights.F32, []int64{3, 16}, make([]float32, 48))
			return r
		}, want: ErrWeights, msg: "score.weight"},
		{name: "bias", swap: func(x *weights.Tensor) *weights.Tensor {
			if x.Name != "model.norm.weight" {
				return nil
			}
			r, _ := weights.FromFloat32("score.bias", weights.F32, []int64{3}, make([]float32, 3))
			return r
		}, want: ErrWeights, msg: "no bias"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := graphWithout(t, dir, c.drop, c.swap)
			if c.name == "bias" { // the norm was swapped out: put it back
				src := openGraph(t, dir)
				n, _ := src.Tensor("model.norm.weight")
				if err := g.Add(n); err != nil {
					t.Fatal(err)
				}
			}
			if c.config != nil {
				cfg, err := arch.UpdateConfig(g.Config, c.config)
				if err != nil {
					t.Fatal(err)
				}
				g.Config = cfg
			}
			_, err := Load(g, nil, Options{})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Load: %v, want %v naming %q", err, c.want, c.msg)
			}
		})
	}
}

// Validation adds a right-padded copy of each random input for a head with
// a pad token, and none for other models; a classifier is not judged by
// perplexity.
func TestValidatePaddedInputs(t *testing.T) {
	if got := PaddedInputs([][]int{{1, 2, 3, 4, 5, 6, 7, 8}, {9}, {1, 2}}, 0); !slices.EqualFunc(got, [][]int{{1, 2, 3, 4, 5, 6, 0, 0}, {1, 0}}, slices.Equal) {
		t.Errorf("PaddedInputs = %v", got)
	}
	ctx := context.Background()
	cls := loadModel(t, filepath.Join(fixtures, "llama-cls-st"), 1)
	rep, err := Validate(ctx, cls, cls, ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PaddedInputs != len(rep.Lengths) || !rep.Passed || rep.Outputs[1].Elements != 2*len(rep.Lengths)*3 {
		t.Errorf("classifier: %d padded inputs, passed %v, %d logits", rep.PaddedInputs, rep.Passed, rep.Outputs[1].Elements)
	}
	lm := loadModel(t, filepath.Join(fixtures, "llama-tiny-st"), 1)
	if rep, err := Validate(ctx, lm, lm, ValidateOptions{}); err != nil || rep.PaddedInputs != 0 {
		t.Errorf("causal LM: %v, %d padded inputs", err, rep.PaddedInputs)
	}
	if causalLM(cls.Info()) {
		t.Error("a sequence classifier is judged as a causal LM")
	}
}
