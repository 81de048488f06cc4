package forward

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// Gemma 2 and 3 checkpoints without one of their extra norms are refused
// by name (not run as Gemma 1 layers).
func TestGemmaMissingNorms(t *testing.T) {
	for _, c := range []struct{ fixture, name string }{
		{"gemma2-st", "model.layers.1.pre_feedforward_layernorm.weight"},
		{"gemma2-st", "model.layers.0.post_feedforward_layernorm.weight"},
		{"gemma3-st", "model.layers.2.self_attn.q_norm.weight"},
	} {
		g := graphWithout(t, filepath.Join(fixtures, c.fixture), func(n string) bool { return n == c.name }, nil)
		if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s without %s: %v", c.fixture, c.name, err)
		}
	}
}

// Gemma3TextModel (no "model." prefix, no head, so no final soft-capping) gives
// the last hidden state of the causal LM it came from; the (1 + w) norms
// leave the checkpoint's weights as they were (a second load computes the
// same).
func TestGemmaModelWithoutPrefix(t *testing.T) {
	dir := filepath.Join(fixtures, "gemma3-st")
	src := openGraph(t, dir)
	g := weights.NewGraph()
	g.Config = []byte(strings.Replace(string(src.Config), `"Gemma3ForCausalLM"`, `"Gemma3TextModel"`, 1))
	for _, tn := range src.Tensors() {
		c := *tn
		c.Name = strings.TrimPrefix(tn.Name, "model.")
		g.Add(&c)
	}
	ids, want := expected(t, dir)
	wv, _ := want[OutputLastHiddenState].Float32s()
	for range 2 {
		m, err := Load(g, nil, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		if info := m.Info(); info.Family != "gemma" || info.Architecture != "Gemma3TextModel" || !slices.Equal(info.Outputs, []string{OutputLastHiddenState}) {
			t.Errorf("Info = %+v", info)
		}
		out, err := m.Run(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		for i := range wv {
			if math.Abs(float64(out.Tensors[0].Data[i]-wv[i])) > 1e-4 {
				t.Fatalf("last_hidden_state[%d] = %g, want %g", i, out.Tensors[0].Data[i], wv[i])
			}
		}
	}
}

// A config as transformers 5 writes it, rotary bases and scaling in
// rope_parameters (per layer type for Gemma 3) instead of rope_theta,
// rope_scaling and rope_local_base_freq, computes the same: gemma3-st
// (linear scaling on its global layers, a local base of its own) and
// qwen3-st.
func TestRopeParameters(t *testing.T) {
	for _, c := range []struct {
		fixture string
		drop    []string
		params  string
	}{
		{"gemma3-st", []string{"rope_theta", "rope_scaling", "rope_local_base_freq"},
			`{"full_attention":{"rope_type":"linear","factor":4.0,"rope_theta":1000000.0},"sliding_attention":{"rope_type":"default","rope_theta":100.0}}`},
		{"qwen3-st", []string{"rope_theta"}, `{"rope_type":"default","rope_theta":1000000.0}`},
	} {
		dir := filepath.Join(fixtures, c.fixture)
		src := openGraph(t, dir)
		fields := map[string]any{"rope_parameters": json.RawMessage(c.params)}
		for _, f := range c.drop {
			fields[f] = nil
		}
		cfg, err := arch.UpdateConfig(src.Config, fields)
		if err != nil {
			t.Fatal(err)
		}
		g := graphWithout(t, dir, nil, nil)
		g.Config = cfg
		m, err := Load(g, nil, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids, want := expected(t, dir)
		out, err := m.Run(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		wv, _ := want[OutputLogits].Float32s()
		got, _ := out.Get(OutputLogits)
		for i := range wv {
			if math.Abs(float64(got.Data[i]-wv[i])) > 1e-4 {
				t.Fatalf("%s: logit %d = %g, want %g", c.fixture, i, got.Data[i], wv[i])
			}
		}
	}
}
