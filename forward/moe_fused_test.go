package forward

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/hubmirror/hubmirror/weights"
)

// fusedTwins pairs each fixture in transformers 5's fused layout with the
// per-expert fixture whose weights it holds.
var fusedTwins = []struct{ fused, twin string }{
	{"mixtral-fused-st", "mixtral-st"},
	{"qwen2moe-fused-f16-st", "qwen2moe-f16-st"},
	{"qwen3moe-fused-st", "qwen3moe-st"},
	{"qwen3moe-fused-bf16-st", "qwen3moe-bf16-st"},
}

// A checkpoint with fused experts (mlp.experts.gate_up_proj and down_proj,
// Mixtral's router as mlp.gate) computes exactly what its per-expert twin
// computes (bit for bit: the same matrices, viewed in place in the fused
// tensors), uses every tensor, and reports the twin's architecture, dtype
// and parameter count.
func TestMoEFusedMatchesTwin(t *testing.T) {
	ctx := context.Background()
	for _, c := range fusedTwins {
		fg := openGraph(t, filepath.Join(fixtures, c.fused))
		fm, err := Load(fg, nil, Options{Threads: 2})
		if err != nil {
			t.Fatalf("%s: %v", c.fused, err)
		}
		tm := loadModel(t, filepath.Join(fixtures, c.twin), 2)
		fi, ti := fm.Info(), tm.Info()
		if len(fi.Unused) != 0 || fi.Architecture != ti.Architecture || fi.WeightDType != ti.WeightDType || fi.Layers != ti.Layers {
			t.Errorf("%s: Info %+v, twin's %+v", c.fused, fi, ti)
		}
		if fg.NumParams() != openGraph(t, filepath.Join(fixtures, c.twin)).NumParams() {
			t.Errorf("%s: %d parameters, twin %d", c.fused, fg.NumParams(), openGraph(t, filepath.Join(fixtures, c.twin)).NumParams())
		}
		ids, _ := expected(t, filepath.Join(fixtures, c.fused))
		want, err := tm.Run(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fm.Run(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		for k, w := range want.Tensors {
			g := got.Tensors[k]
			if g.Name != w.Name || len(g.Data) != len(w.Data) {
				t.Fatalf("%s: output %s, twin's %s", c.fused, g.Name, w.Name)
			}
			for i := range w.Data {
				if g.Data[i] != w.Data[i] {
					t.Fatalf("%s %s[%d] = %g, per-expert twin %g", c.fused, w.Name, i, g.Data[i], w.Data[i])
				}
			}
		}
		// The experts' matrices are views of their slices of the fused
		// tensors of their layer.
		moeLayers := 0
		for i, l := range fm.net.(*llama).layers {
			if l.moe == nil {
				continue
			}
			moeLayers++
			gu := tensorBytes(t, fg, fmt.Sprintf("model.layers.%d.mlp.experts.gate_up_proj", i))
			dn := tensorBytes(t, fg, fmt.Sprintf("model.layers.%d.mlp.experts.down_proj", i))
			for e, x := range l.moe.experts {
				for k, v := range []struct {
					w, fused []byte
					slice    int
				}{{x.gate.w.Data, gu, 2 * e}, {x.up.w.Data, gu, 2*e + 1}, {x.down.w.Data, dn, e}} {
					n := len(v.w)
					if n == 0 || len(v.fused) < (v.slice+1)*n || unsafe.SliceData(v.w) != &v.fused[v.slice*n] {
						t.Fatalf("%s layer %d expert %d matrix %d is not its slice of the fused tensor", c.fused, i, e, k)
					}
				}
			}
		}
		if moeLayers == 0 {
			t.Fatalf("%s: no MoE layer", c.fused)
		}
	}
}

// tensorBytes returns the bytes of g's tensor name.
func tensorBytes(t *testing.T, g *weights.Graph, name string) []byte {
	t.Helper()
	x, ok := g.Tensor(name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	b, err := x.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Fused experts that are missing, of the wrong shape, integer or F8 are
// refused by name, and so is a fused Mixtral block without its router
// under mlp.gate.
func TestMoEFusedBadWeights(t *testing.T) {
	for _, c := range []struct {
		fx, name string
		shape    []int64 // nil: the tensor is dropped
		dtype    weights.DType
		want     error
	}{
		{"qwen3moe-fused-st", "model.layers.2.mlp.experts.down_proj", nil, 0, ErrWeights},
		{"mixtral-fused-st", "model.layers.0.mlp.gate.weight", nil, 0, ErrWeights},
		{"mixtral-fused-st", "model.layers.1.mlp.experts.gate_up_proj", []int64{4, 48, 32}, weights.F32, ErrWeights},
		{"qwen3moe-fused-st", "model.layers.1.mlp.experts.down_proj", []int64{8, 16, 32}, weights.F32, ErrWeights},
		{"qwen3moe-fused-st", "model.layers.1.mlp.experts.gate_up_proj", []int64{8, 32, 32}, weights.I8, ErrUnsupported},
		{"mixtral-fused-st", "model.layers.2.mlp.experts.down_proj", []int64{4, 32, 48}, weights.F8E4M3, ErrUnsupported},
	} {
		var g *weights.Graph
		if c.shape == nil {
			g = graphWithout(t, filepath.Join(fixtures, c.fx), func(n string) bool { return n == c.name }, nil)
		} else {
			g = graphWithout(t, filepath.Join(fixtures, c.fx), nil, func(x *weights.Tensor) *weights.Tensor {
				if x.Name != c.name {
					return nil
				}
				n := int64(1)
				for _, d := range c.shape {
					n *= d
				}
				return &weights.Tensor{Name: x.Name, DType: c.dtype, Shape: c.shape, Data: weights.Memory(make([]byte, n*int64(c.dtype.Size())))}
			})
		}
		if _, err := Load(g, nil, Options{}); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s with %s %v %v: %v", c.fx, c.name, c.shape, c.dtype, err)
		}
	}
}
