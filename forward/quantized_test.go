package forward

import (
	"errors"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// lowBitGraph returns the quantize.Quantize version (opts) of
// llama-tiny-st with every tensor in memory, then changed by edit.
func lowBitGraph(t *testing.T, opts quantize.Options, edit func(g *weights.Graph)) *weights.Graph {
	t.Helper()
	src := openGraph(t, fixtures+"/llama-tiny-st")
	cfg, err := arch.ParseConfig(src.Config)
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := quantize.Quantize(src, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	g := q.Derive()
	for _, x := range q.Tensors() {
		b, err := x.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m, err := weights.NewTensor(x.Name, x.DType, x.Shape, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(g)
	}
	return g
}

// A w4a16 model loads as int4 (packed, every tensor used) and an fp8 one as
// fp8; a pack-quantized tensor set that does not fit the model is refused
// with ErrWeights naming the tensor, never a panic.
func TestLoadLowBit(t *testing.T) {
	w4 := quantize.Options{Scheme: quantize.W4A16, GroupSize: 16, Asym: true}
	for _, c := range []struct {
		opts quantize.Options
		want string
	}{{w4, "int4"}, {quantize.Options{Scheme: quantize.FP8}, "fp8"}} {
		m, err := Load(lowBitGraph(t, c.opts, nil), nil, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if info := m.Info(); info.Quantization != c.want || !info.Quantized || len(info.Unused) != 0 {
			t.Errorf("%s: info %+v", c.want, info)
		}
	}
	const p = "model.layers.0.mlp.down_proj.weight"
	for name, edit := range map[string]func(g *weights.Graph){
		"no scale": func(g *weights.Graph) { g.Remove(p + "_scale") },
		"packed shape": func(g *weights.Graph) {
			x, _ := g.Tensor(p + "_packed")
			b, _ := x.Bytes()
			r, _ := weights.NewTensor(x.Name, x.DType, []int64{x.Shape[0] / 2, x.Shape[1]}, b[:len(b)/2])
			g.Replace(r)
		},
		"zero point shape": func(g *weights.Graph) {
			x, _ := g.Tensor(p + "_zero_point")
			b, _ := x.Bytes()
			r, _ := weights.NewTensor(x.Name, x.DType, []int64{x.Shape[1], x.Shape[0]}, b)
			g.Replace(r)
		},
		"weight_shape": func(g *weights.Graph) {
			x, _ := g.Tensor(p + "_shape")
			b, _ := x.Bytes()
			b = append([]byte(nil), b...)
			b[8]++
			r, _ := weights.NewTensor(x.Name, x.DType, x.Shape, b)
			g.Replace(r)
		},
	} {
		_, err := Load(lowBitGraph(t, w4, edit), nil, Options{Threads: 1})
		if !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "down_proj") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
