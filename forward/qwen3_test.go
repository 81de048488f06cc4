package forward

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// A Qwen3 checkpoint without a layer's k_norm is refused by name (it is not
// run as a Llama without the norm).
func TestQwen3MissingNorm(t *testing.T) {
	dir := filepath.Join(fixtures, "qwen3-st")
	const name = "model.layers.2.self_attn.k_norm.weight"
	g := graphWithout(t, dir, func(n string) bool { return n == name }, nil)
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), name) {
		t.Errorf("missing k_norm: %v", err)
	}
	g = graphWithout(t, dir, nil, func(x *weights.Tensor) *weights.Tensor {
		if x.Name != "model.layers.0.self_attn.q_norm.weight" {
			return nil
		}
		// A q_norm over the whole of q rather than one head.
		r, _ := weights.FromFloat32(x.Name, weights.F32, []int64{64}, make([]float32, 64))
		return r
	})
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "q_norm") {
		t.Errorf("q_norm of the wrong size: %v", err)
	}
}

// Qwen3Model (no "model." prefix, no head) gives the last hidden state of
// the causal LM it came from, under family qwen3.
func TestQwen3ModelWithoutPrefix(t *testing.T) {
	dir := filepath.Join(fixtures, "qwen3-st")
	src := openGraph(t, dir)
	g := weights.NewGraph()
	g.Config = []byte(strings.Replace(string(src.Config), `"Qwen3ForCausalLM"`, `"Qwen3Model"`, 1))
	for _, tn := range src.Tensors() {
		c := *tn
		c.Name = strings.TrimPrefix(tn.Name, "model.")
		g.Add(&c)
	}
	m, err := Load(g, nil, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if info := m.Info(); info.Family != "qwen3" || info.Architecture != "Qwen3Model" || !slices.Equal(info.Outputs, []string{OutputLastHiddenState}) {
		t.Errorf("Info = %+v", info)
	}
	ids, want := expected(t, dir)
	out, err := m.Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	wv, _ := want[OutputLastHiddenState].Float32s()
	for i := range wv {
		if math.Abs(float64(out.Tensors[0].Data[i]-wv[i])) > 1e-4 {
			t.Fatalf("last_hidden_state[%d] = %g, want %g", i, out.Tensors[0].Data[i], wv[i])
		}
	}
}
