package convert

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/weights"
)

func openModel(t *testing.T, name string) (*weights.Graph, *arch.Config) {
	t.Helper()
	g, err := formats.Open(filepath.Join("..", "testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	return g, cfg
}

// PerExpert turns a checkpoint in transformers 5's fused layout into its
// per-expert twin: the same tensor names (Mixtral's router back under
// block_sparse_moe), shapes, dtypes and bytes; a per-expert checkpoint
// comes back as it is.
func TestPerExpertIsTwin(t *testing.T) {
	for _, c := range []struct{ fused, twin string }{
		{"mixtral-fused-st", "mixtral-st"},
		{"qwen2moe-fused-f16-st", "qwen2moe-f16-st"},
		{"qwen3moe-fused-st", "qwen3moe-st"},
	} {
		fg, fcfg := openModel(t, c.fused)
		tg, tcfg := openModel(t, c.twin)
		out, fused, err := PerExpert(fg, fcfg)
		if err != nil || !fused {
			t.Fatalf("%s: fused %v, %v", c.fused, fused, err)
		}
		names := func(g *weights.Graph) []string {
			var n []string
			for _, x := range g.Tensors() {
				n = append(n, x.Name)
			}
			slices.Sort(n)
			return n
		}
		if !slices.Equal(names(out), names(tg)) {
			t.Fatalf("%s: tensors %v, twin's %v", c.fused, names(out), names(tg))
		}
		for _, want := range tg.Tensors() {
			got, _ := out.Tensor(want.Name)
			if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || !bytes.Equal(mustBytes(t, got), mustBytes(t, want)) {
				t.Fatalf("%s: %s %v %v differs from the twin's %v %v", c.fused, want.Name, got.DType, got.Shape, want.DType, want.Shape)
			}
		}
		same, fused, err := PerExpert(tg, tcfg)
		if err != nil || fused || same != tg {
			t.Errorf("%s: per-expert checkpoint changed (fused %v, %v)", c.twin, fused, err)
		}
	}
}
