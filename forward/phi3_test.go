package forward

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// A Phi-3 checkpoint without a layer's fused qkv_proj (or with Llama's
// split q_proj in its place) is refused by name.
func TestPhi3MissingFused(t *testing.T) {
	dir := filepath.Join(fixtures, "phi3-st")
	for _, name := range []string{"model.layers.1.self_attn.qkv_proj.weight", "model.layers.2.mlp.gate_up_proj.weight"} {
		g := graphWithout(t, dir, func(n string) bool { return n == name }, nil)
		if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), name) {
			t.Errorf("missing %s: %v", name, err)
		}
	}
}

// phi3Logits runs phi3-st with config.json's fields replaced and returns
// the largest difference of its logits from the expected ones.
func phi3Logits(t *testing.T, fields map[string]any) float64 {
	t.Helper()
	dir := filepath.Join(fixtures, "phi3-st")
	g := graphWithout(t, dir, nil, nil)
	cfg, err := arch.UpdateConfig(g.Config, fields)
	if err != nil {
		t.Fatal(err)
	}
	g.Config = cfg
	m, err := Load(g, nil, Options{Threads: 2})
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
	d := 0.0
	for i := range wv {
		d = math.Max(d, math.Abs(float64(got.Data[i]-wv[i])))
	}
	return d
}

// The rope_scaling of phi3-st written as older Phi-3 configs write it
// ("su") and as transformers 5 writes it (rope_parameters holding the type,
// factors, rope_theta, partial_rotary_factor and
// original_max_position_embeddings) computes the same; the long factors
// matter (the 21-token input is longer than original_max_position_embeddings
// 8): the short ones in their place move the logits.
func TestPhi3RopeScalingForms(t *testing.T) {
	src := openGraph(t, filepath.Join(fixtures, "phi3-st"))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(src.Config, &raw); err != nil {
		t.Fatal(err)
	}
	var rs map[string]any
	if err := json.Unmarshal(raw["rope_scaling"], &rs); err != nil {
		t.Fatal(err)
	}
	su := map[string]any{"type": "su", "short_factor": rs["short_factor"], "long_factor": rs["long_factor"]}
	params := map[string]any{"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
		"original_max_position_embeddings": 8, "short_factor": rs["short_factor"], "long_factor": rs["long_factor"]}
	for name, fields := range map[string]map[string]any{
		"su": {"rope_scaling": su},
		"rope_parameters": {"rope_parameters": params, "rope_scaling": nil, "rope_theta": nil,
			"partial_rotary_factor": nil, "original_max_position_embeddings": nil},
	} {
		if d := phi3Logits(t, fields); d > 1e-4 {
			t.Errorf("%s: logits differ by %g", name, d)
		}
	}
	short := map[string]any{"type": "longrope", "short_factor": rs["short_factor"], "long_factor": rs["short_factor"]}
	if d := phi3Logits(t, map[string]any{"rope_scaling": short}); d < 1e-2 {
		t.Errorf("short factors for long ones: logits differ by only %g", d)
	}
}

// linearRows views rows of an int8 weight with their scales.
func TestLinearRowsInt8(t *testing.T) {
	g := weights.NewGraph()
	w, _ := weights.FromFloat32("w", weights.F32, []int64{3, 2}, []float32{1, 2, 3, 4, 5, 6})
	s := newTensorSet(g)
	full, err := s.toMatrix(w, 3, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	full.DType, full.Data, full.Scales = weights.I8, []byte{1, 2, 3, 4, 5, 6}, []float32{0.5, 1, 2}
	r := linearRows(linear{w: full, b: []float32{7, 8, 9}}, 1, 3)
	if r.w.Out != 2 || r.w.In != 2 || string(r.w.Data) != "\x03\x04\x05\x06" || len(r.w.Scales) != 2 || r.w.Scales[0] != 1 ||
		len(r.b) != 2 || r.b[0] != 8 || r.w.Validate() != nil {
		t.Errorf("rows: %+v %v", r.w, r.b)
	}
}
