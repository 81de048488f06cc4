package forward

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// A w8a8 model loads as W8A8 (every tensor used) and runs with int8
// activations: its logits differ from the same weights run weight-only
// (the config's input_activations removed) and stay close to them.
func TestLoadW8A8(t *testing.T) {
	ids := []int{1, 5, 9, 2, 7, 3, 11, 4}
	run := func(g *weights.Graph, opts ...Options) ([]float32, Info) {
		o := Options{Threads: 2}
		if len(opts) > 0 {
			o = opts[0]
		}
		m, err := Load(g, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Run(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		l, ok := out.Get(OutputLogits)
		if !ok {
			t.Fatal("no logits")
		}
		return l.Data, m.Info()
	}
	w8, info := run(lowBitGraph(t, quantize.Options{Scheme: quantize.W8A8}, nil))
	if info.Quantization != "w8a8" || !info.Quantized || len(info.Unused) != 0 {
		t.Fatalf("info %+v", info)
	}
	// With BeforeLayer (memory bounded to the layers in use) the weights
	// are packed per product: the same logits.
	layers := 0
	tr, _ := run(lowBitGraph(t, quantize.Options{Scheme: quantize.W8A8}, nil), Options{Threads: 2, BeforeLayer: func() { layers++ }})
	for k := range w8 {
		if tr[k] != w8[k] || layers == 0 {
			t.Fatalf("with BeforeLayer: logit %d = %v, without %v (%d layers)", k, tr[k], w8[k], layers)
		}
	}
	wo, info := run(lowBitGraph(t, quantize.Options{Scheme: quantize.W8A8}, func(g *weights.Graph) {
		g.Config = editQuantConfig(t, g.Config, func(grp map[string]any) { grp["input_activations"] = nil })
	}))
	if info.Quantization != "int8" {
		t.Fatalf("without input_activations: %q", info.Quantization)
	}
	var dot, n1, n2 float64
	same := true
	for k := range w8 {
		dot += float64(w8[k]) * float64(wo[k])
		n1 += float64(w8[k]) * float64(w8[k])
		n2 += float64(wo[k]) * float64(wo[k])
		same = same && w8[k] == wo[k]
	}
	if cos := dot / math.Sqrt(n1*n2); same || cos < 0.99 {
		t.Errorf("W8A8 against weight-only: identical %v, cosine %v", same, cos)
	}
}

// Activation arguments the forward pass does not run (static scales,
// per-tensor, 4 bits) and W8A8 with grouped weight scales are refused with
// ErrUnsupported naming the tensor, not run as weight-only int8.
func TestW8A8Refused(t *testing.T) {
	for name, c := range map[string]struct {
		opts quantize.Options
		edit func(map[string]any)
	}{
		"static":     {quantize.Options{Scheme: quantize.W8A8}, func(a map[string]any) { a["dynamic"] = false }},
		"per tensor": {quantize.Options{Scheme: quantize.W8A8}, func(a map[string]any) { a["strategy"] = "tensor" }},
		"4 bits":     {quantize.Options{Scheme: quantize.W8A8}, func(a map[string]any) { a["num_bits"] = 4 }},
		"grouped":    {quantize.Options{Scheme: quantize.Int8, GroupSize: 8}, nil},
	} {
		g := lowBitGraph(t, c.opts, func(g *weights.Graph) {
			g.Config = editQuantConfig(t, g.Config, func(grp map[string]any) {
				a := map[string]any{"num_bits": 8, "type": "int", "symmetric": true, "dynamic": true, "strategy": "token"}
				if c.edit != nil {
					c.edit(a)
				}
				grp["input_activations"] = a
			})
		})
		_, err := Load(g, nil, Options{Threads: 1})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "proj.weight") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// editQuantConfig applies edit to group_0 of config's quantization_config.
func editQuantConfig(t *testing.T, config []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal(config, &c); err != nil {
		t.Fatal(err)
	}
	edit(c["quantization_config"].(map[string]any)["config_groups"].(map[string]any)["group_0"].(map[string]any))
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
