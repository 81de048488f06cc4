package artifact

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/prune"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// namedPass is a pass the family tests run on fixtures, with the kind of
// change the CLI judges it by and the thresholds (nil: the kind's
// defaults).
type namedPass struct {
	name string
	kind forward.Kind
	pass Pass
	th   *forward.Thresholds
}

// The passes every family runs, as the CLI runs them.
var (
	namedConvertPass = namedPass{"convert", forward.KindExact, func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		return convert.DedupeShared(g, cfg)
	}, nil}
	namedFp16Pass = namedPass{"fp16", forward.KindF16, schemePass(quantize.FP16), nil}
	namedBf16Pass = namedPass{"bf16", forward.KindBF16, schemePass(quantize.BF16), nil}
	namedInt8Pass = namedPass{"int8", forward.KindInt8, schemePass(quantize.Int8), nil}
)

// sparsityPass is prune --sparsity 0.5, judged by th.
func sparsityPass(th *forward.Thresholds) namedPass {
	return namedPass{"sparsity-0.5", forward.KindPruned, func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		return prune.Magnitude(g, cfg, 0.5, false)
	}, th}
}

// nmPass is prune --pattern 2:4, judged by th.
func nmPass(th *forward.Thresholds) namedPass {
	return namedPass{"nm-2:4", forward.KindPruned, func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		return prune.NM(g, cfg, 2, 4)
	}, th}
}

// runPass builds fixture fx with p into a temporary directory and returns
// the directory and the validation report, failing the test unless the
// result passed validation with the kind asked for. It logs each output's
// cosine, top-1 agreement and KL.
func runPass(t *testing.T, fx string, p namedPass) (string, *forward.Report) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out")
	res, err := Build(context.Background(), filepath.Join(models, fx), dst, p.name, p.pass,
		Options{Validate: forward.ValidateOptions{Kind: p.kind, Thresholds: p.th}})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Document.Validation
	if v.Kind != p.kind || !v.Passed || len(v.Outputs) == 0 {
		t.Fatalf("kind %s passed %v outputs %d: %v", v.Kind, v.Passed, len(v.Outputs), v.Failures)
	}
	for _, o := range v.Outputs {
		t.Logf("%-20s %-18s cosine %.7f top1 %.4f KL %.3g", fx, o.Name, o.Cosine, o.Top1Agreement, o.KLDivergence)
	}
	return dst, v
}
