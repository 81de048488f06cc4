package prune

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/weights"
)

// openFixture opens a model of testdata/models with its parsed config.
func openFixture(t *testing.T, name string) (*weights.Graph, *arch.Config) {
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

// Magnitude pruning per tensor and N:M pruning of transformers 5's fused
// experts prune each expert's gate, up and down on its own, exactly as
// they prune the per-expert twin's tensors: every slice of the pruned
// fused tensors equals the twin's pruned matrix, and each slice of a
// magnitude-pruned tensor has its own half of zeros.
func TestFusedExpertsPrunedAsTwin(t *testing.T) {
	for _, c := range []struct {
		fused, twin, block string
		gate, up, down     string
	}{
		{"mixtral-fused-st", "mixtral-st", arch.MixtralMoE, arch.MixtralExpertGate, arch.MixtralExpertUp, arch.MixtralExpertDown},
		{"qwen3moe-fused-st", "qwen3moe-st", arch.QwenMoE, arch.QwenExpertGate, arch.QwenExpertUp, arch.QwenExpertDown},
		{"qwen2moe-fused-f16-st", "qwen2moe-f16-st", arch.QwenMoE, arch.QwenExpertGate, arch.QwenExpertUp, arch.QwenExpertDown},
	} {
		fg, fcfg := openFixture(t, c.fused)
		tg, tcfg := openFixture(t, c.twin)
		for _, p := range []struct {
			name string
			run  func(*weights.Graph, *arch.Config) (*weights.Graph, *Report, error)
		}{
			{"magnitude", func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, *Report, error) {
				return Magnitude(g, cfg, 0.5, false)
			}},
			{"2:4", func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, *Report, error) { return NM(g, cfg, 2, 4) }},
		} {
			fout, frep, err := p.run(fg, fcfg)
			if err != nil {
				t.Fatalf("%s %s: %v", c.fused, p.name, err)
			}
			tout, _, err := p.run(tg, tcfg)
			if err != nil {
				t.Fatal(err)
			}
			fusedSeen := 0
			for _, r := range frep.Tensors {
				if strings.HasSuffix(r.Name, ".experts.gate_up_proj") || strings.HasSuffix(r.Name, ".experts.down_proj") {
					fusedSeen++
				}
			}
			layers := 0
			for _, x := range fg.Tensors() {
				layer, ok := strings.CutSuffix(x.Name, ".mlp.experts.gate_up_proj")
				if !ok {
					continue
				}
				layers++
				E := int(x.Shape[0])
				gu := floats(t, fout, x.Name)
				dn := floats(t, fout, layer+".mlp.experts.down_proj")
				for e := 0; e < E; e++ {
					expert := fmt.Sprintf("%s.%s.experts.%d.", layer, c.block, e)
					for k, part := range []struct {
						got  []float32
						twin string
					}{
						{gu[2*e*len(gu)/(2*E) : (2*e+1)*len(gu)/(2*E)], c.gate},
						{gu[(2*e+1)*len(gu)/(2*E) : (2*e+2)*len(gu)/(2*E)], c.up},
						{dn[e*len(dn)/E : (e+1)*len(dn)/E], c.down},
					} {
						want := floats(t, tout, expert+part.twin+".weight")
						if !slices.Equal(part.got, want) {
							t.Fatalf("%s %s: %s slice %d of expert %d differs from the twin's pruned %s", c.fused, p.name, x.Name, k, e, part.twin)
						}
						zeros := 0
						for _, v := range part.got {
							if v == 0 {
								zeros++
							}
						}
						if p.name == "magnitude" && zeros != len(part.got)/2 {
							t.Fatalf("%s: expert %d slice %d has %d zeros of %d", x.Name, e, k, zeros, len(part.got))
						}
					}
				}
			}
			if layers == 0 || fusedSeen != 2*layers {
				t.Fatalf("%s %s: %d fused layers, %d fused tensors in the report", c.fused, p.name, layers, fusedSeen)
			}
		}
	}
}

// Global magnitude pruning takes the fused experts' values into its one
// threshold: the fused model loses as many weights as its per-expert twin.
func TestFusedExpertsGlobalThreshold(t *testing.T) {
	fg, fcfg := openFixture(t, "qwen3moe-fused-st")
	tg, tcfg := openFixture(t, "qwen3moe-st")
	_, frep, err := Magnitude(fg, fcfg, 0.5, true)
	if err != nil {
		t.Fatal(err)
	}
	_, trep, err := Magnitude(tg, tcfg, 0.5, true)
	if err != nil {
		t.Fatal(err)
	}
	count := func(r *Report) (z, n int64) {
		for _, x := range r.Tensors {
			z += x.Zeros
			n += x.Elements
		}
		return z, n
	}
	fz, fn := count(frep)
	tz, tn := count(trep)
	if fz != tz || fn != tn || fn == 0 {
		t.Errorf("fused: %d zeros of %d; per expert: %d of %d", fz, fn, tz, tn)
	}
}

// FFN pruning refuses fused experts by name, as a pruning request the model
// cannot take.
func TestFusedExpertsFFNRefused(t *testing.T) {
	for _, fx := range []string{"mixtral-fused-st", "qwen3moe-fused-st", "qwen2moe-fused-f16-st"} {
		g, cfg := openFixture(t, fx)
		_, _, err := FFN(g, cfg, 0.5)
		if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "mlp.experts.gate_up_proj") || !strings.Contains(err.Error(), "fused") {
			t.Errorf("%s: %v", fx, err)
		}
	}
}
