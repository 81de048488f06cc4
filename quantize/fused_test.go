package quantize

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/weights"
)

// int8, w4a16 and fp8 leave transformers 5's fused experts in float (they
// are not Linear modules, which compressed-tensors alone describes): kept
// as experts, out of quantization_config's ignore (which names Linear
// modules), while the routers are kept and ignored and the attention
// quantized.
func TestFusedExpertsKeptFloat(t *testing.T) {
	g, err := formats.Open(filepath.Join("..", "testdata", "models", "qwen3moe-fused-st"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Scheme{Int8, W4A16, FP8} {
		out, rep, err := Quantize(g, cfg, Options{Scheme: s, GroupSize: map[Scheme]int{W4A16: 16}[s]})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		kept := map[string]arch.Role{}
		for _, k := range rep.Kept {
			kept[k.Name] = k.Role
		}
		fused := 0
		for _, x := range g.Tensors() {
			y, _ := out.Tensor(x.Name)
			switch {
			case strings.HasSuffix(x.Name, ".experts.gate_up_proj") || strings.HasSuffix(x.Name, ".experts.down_proj"):
				fused++
				if kept[x.Name] != arch.RoleExperts || y == nil || y.DType != weights.F32 {
					t.Errorf("%s %s: kept as %q, %v", s, x.Name, kept[x.Name], y)
				}
				for _, ig := range rep.Ignored {
					if strings.HasPrefix(x.Name, ig) {
						t.Errorf("%s: ignore names %s", s, ig)
					}
				}
			case strings.HasSuffix(x.Name, ".self_attn.o_proj.weight"):
				if y != nil && y.DType == x.DType {
					t.Errorf("%s %s: %v", s, x.Name, y.DType)
				}
			}
		}
		if fused != 4 {
			t.Errorf("%s: %d fused tensors", s, fused)
		}
	}
}
