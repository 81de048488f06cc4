package forward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// moeFixtures are the fixtures of the MoE families, f32 and half.
var moeFixtures = []string{"mixtral-st", "mixtral-bf16-bin", "qwen2moe-st", "qwen2moe-f16-st", "qwen3moe-st", "qwen3moe-bf16-st",
	"mixtral-fused-st", "qwen2moe-fused-f16-st", "qwen3moe-fused-st", "qwen3moe-fused-bf16-st"}

// maxLogitError runs m on dir's ids and returns the largest difference of
// its logits from the expected ones (NaN when any logit is NaN).
func maxLogitError(t *testing.T, m *Model, dir string) float64 {
	t.Helper()
	ids, want := expected(t, dir)
	out, err := m.Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := out.Get(OutputLogits)
	wv, _ := want[OutputLogits].Float32s()
	worst := 0.0
	for i := range wv {
		d := math.Abs(float64(got.Data[i] - wv[i]))
		if math.IsNaN(d) {
			return d
		}
		worst = max(worst, d)
	}
	return worst
}

// Routing without the renormalization of the top-k probabilities
// (Mixtral's always, Qwen's with norm_topk_prob) computes something else
// on the fixtures that renormalize: the fixtures catch a forward pass that
// skips it. On a fixture that does not renormalize (qwen2moe-st),
// renormalizing is caught the same way; the fused fixtures likewise.
func TestMoERenormalizationMatters(t *testing.T) {
	for _, fx := range moeFixtures {
		dir := filepath.Join(fixtures, fx)
		m := loadModel(t, dir, 1)
		if d := maxLogitError(t, m, dir); !(d <= 1e-4) {
			t.Fatalf("%s: %g before the change", fx, d)
		}
		flipped := 0
		for _, l := range m.net.(*llama).layers {
			if l.moe != nil {
				l.moe.normTopK = !l.moe.normTopK
				flipped++
			}
		}
		if flipped == 0 {
			t.Fatalf("%s: no MoE layer", fx)
		}
		if d := maxLogitError(t, m, dir); !(d > 1e-2) {
			t.Errorf("%s: flipping the renormalization changes the logits by only %g", fx, d)
		}
	}
}

// Each token runs only the experts it is routed to: with one expert of the
// last layer made of NaNs, the tokens routed to it get NaN logits and every
// other token its expected ones (a dense pass multiplying unrouted experts
// by a zero weight would spread the NaNs to every token). Over the experts
// in turn, each token is NaN for exactly top-k of them.
func TestMoEOnlyRoutedExpertsRun(t *testing.T) {
	for _, c := range []struct {
		fx, format    string
		experts, topK int
	}{
		{"qwen3moe-st", "model.layers.2.mlp.experts.%d.down_proj.weight", 8, 2},
		{"mixtral-st", "model.layers.2.block_sparse_moe.experts.%d.w2.weight", 4, 2},
	} {
		dir := filepath.Join(fixtures, c.fx)
		ids, want := expected(t, dir)
		wv, _ := want[OutputLogits].Float32s()
		routed := make([]int, len(ids))
		for e := 0; e < c.experts; e++ {
			name := fmt.Sprintf(c.format, e)
			g := graphWithout(t, dir, nil, func(x *weights.Tensor) *weights.Tensor {
				if x.Name != name {
					return nil
				}
				v := make([]float32, x.NumElements())
				for i := range v {
					v[i] = float32(math.NaN())
				}
				r, err := weights.FromFloat32(x.Name, x.DType, x.Shape, v)
				if err != nil {
					t.Fatal(err)
				}
				return r
			})
			m, err := Load(g, nil, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Run(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := out.Get(OutputLogits)
			V := got.Shape[2]
			for tok := range ids {
				row := got.Data[tok*V : (tok+1)*V]
				if math.IsNaN(float64(row[0])) {
					routed[tok]++
					continue
				}
				for i, v := range row {
					if math.Abs(float64(v-wv[tok*V+i])) > 1e-4 {
						t.Fatalf("%s expert %d: token %d logit %d = %g, want %g", c.fx, e, tok, i, v, wv[tok*V+i])
					}
				}
			}
		}
		for tok, n := range routed {
			if n != c.topK {
				t.Errorf("%s: token %d NaN with %d of the experts, want %d", c.fx, tok, n, c.topK)
			}
		}
	}
}

// ParamCount counts what the checkpoints hold: every expert of every MoE
// layer, shared experts and gates, routers, dense layers, attention (with
// Qwen2-MoE's biases, Qwen3-MoE's q/k norms), norms, embeddings, an untied
// head.
func TestMoEParamCount(t *testing.T) {
	for _, fx := range moeFixtures {
		g := openGraph(t, filepath.Join(fixtures, fx))
		cfg, err := arch.ParseConfig(g.Config)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := cfg.Params.(interface{ ParamCount() int64 })
		if !ok {
			t.Fatalf("%s: %T has no ParamCount", fx, cfg.Params)
		}
		if got, want := p.ParamCount(), g.NumParams(); got != want {
			t.Errorf("%s: ParamCount %d, the checkpoint has %d", fx, got, want)
		}
	}
}

// A checkpoint without one expert's weight, or whose router has a row too
// few, is refused by name; Qwen's use_sliding_window is refused as
// unsupported.
func TestMoEBadWeights(t *testing.T) {
	for _, c := range []struct{ fx, name string }{
		{"mixtral-st", "model.layers.1.block_sparse_moe.experts.3.w3.weight"},
		{"qwen2moe-st", "model.layers.0.mlp.shared_expert_gate.weight"},
		{"qwen2moe-st", "model.layers.1.mlp.up_proj.weight"}, // the dense layer
		{"qwen3moe-st", "model.layers.2.mlp.experts.7.gate_proj.weight"},
	} {
		g := graphWithout(t, filepath.Join(fixtures, c.fx), func(n string) bool { return n == c.name }, nil)
		if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s without %s: %v", c.fx, c.name, err)
		}
	}
	g := graphWithout(t, filepath.Join(fixtures, "qwen3moe-st"), nil, func(x *weights.Tensor) *weights.Tensor {
		if x.Name != "model.layers.1.mlp.gate.weight" {
			return nil
		}
		r, _ := weights.FromFloat32(x.Name, weights.F32, []int64{7, x.Shape[1]}, make([]float32, 7*int(x.Shape[1])))
		return r
	})
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "mlp.gate") {
		t.Errorf("router with 7 rows for 8 experts: %v", err)
	}
	for _, fx := range []string{"qwen2moe-st", "qwen3moe-st"} {
		g := graphWithout(t, filepath.Join(fixtures, fx), nil, nil)
		cfg, err := arch.UpdateConfig(g.Config, map[string]any{"use_sliding_window": true})
		if err != nil {
			t.Fatal(err)
		}
		g.Config = cfg
		if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "use_sliding_window") {
			t.Errorf("%s with use_sliding_window: %v", fx, err)
		}
	}
}

// RunBatch gives the MoE families what Run gives each sequence alone, to
// rounding (an expert's rows in a batch are the rows of every sequence
// routed to it, which the kernels may sum in another order than a few rows
// alone), with every sequence meeting at the same products (each expert's,
// also of an expert no token of a sequence goes to), and the hook once per
// layer.
func TestMoERunBatch(t *testing.T) {
	ctx := context.Background()
	for _, name := range moeFixtures {
		calls := 0
		m, err := Load(openGraph(t, filepath.Join(fixtures, name)), nil, Options{Threads: 2, BeforeLayer: func() { calls++ }})
		if err != nil {
			t.Fatal(err)
		}
		inputs := ValidationInputs(3, []int{7, 16, 2, 5}, m.Info().VocabSize)
		got, err := m.RunBatch(ctx, inputs)
		if err != nil {
			t.Fatal(err)
		}
		if want := m.Info().Layers + 1; calls != want {
			t.Errorf("%s: hook called %d times for the batch, want %d", name, calls, want)
		}
		for j, ids := range inputs {
			want, err := m.Run(ctx, ids)
			if err != nil {
				t.Fatal(err)
			}
			for k, w := range want.Tensors {
				cm, err := Compare(&got[j].Tensors[k], &w)
				if err != nil {
					t.Fatal(err)
				}
				if cm.MaxAbsError > 1e-5 {
					t.Errorf("%s sequence %d %s: batch and alone differ by %g", name, j, w.Name, cm.MaxAbsError)
				}
			}
		}
	}
}
