package artifact

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// f32Fixtures lists the project's fixture models stored in float32.
func f32Fixtures(t *testing.T) []string {
	dirs, _ := filepath.Glob(filepath.Join(models, "*"))
	var out []string
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(d, "config.json"))
		if err != nil {
			continue
		}
		cfg, err := arch.ParseConfig(raw)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TorchDType == "float16" || cfg.TorchDType == "bfloat16" || strings.Contains(d, "f16") || strings.Contains(d, "bf16") {
			continue
		}
		out = append(out, d)
	}
	if len(out) < 8 {
		t.Fatalf("only %d f32 fixtures", len(out))
	}
	return out
}

// The acceptance: fp16 keeps cosine >= 0.9999 on every output of
// every fixture, and int8 per channel passes validate's default int8
// thresholds. Run with -v to see the measured values (README quotes them).
func TestFixturesQuantized(t *testing.T) {
	for _, scheme := range []quantize.Scheme{quantize.FP16, quantize.Int8} {
		for _, dir := range f32Fixtures(t) {
			name := fmt.Sprintf("%s/%s", scheme, filepath.Base(dir))
			t.Run(name, func(t *testing.T) {
				pass := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
					return quantize.Quantize(g, cfg, quantize.Options{Scheme: scheme})
				}
				dst := filepath.Join(t.TempDir(), "out")
				res, err := Build(context.Background(), dir, dst, "quantize", pass, Options{})
				if err != nil {
					t.Fatal(err)
				}
				v := res.Document.Validation
				wantKind := map[quantize.Scheme]forward.Kind{quantize.FP16: forward.KindF16, quantize.Int8: forward.KindInt8}[scheme]
				if v.Kind != wantKind || !v.Passed {
					t.Fatalf("kind %s passed %v: %v", v.Kind, v.Passed, v.Failures)
				}
				for _, o := range v.Outputs {
					if scheme == quantize.FP16 && o.Cosine < 0.9999 {
						t.Errorf("%s: cosine %.7f < 0.9999", o.Name, o.Cosine)
					}
					line := fmt.Sprintf("%-8s %-26s %-18s cosine %.7f", scheme, filepath.Base(dir), o.Name, o.Cosine)
					if o.Logits {
						line += fmt.Sprintf(" top1 %.4f KL %.3g", o.Top1Agreement, o.KLDivergence)
					}
					t.Log(line)
				}
			})
		}
	}
}
