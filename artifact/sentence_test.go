package artifact

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// A pass over a sentence-transformers model keeps its modules (Pooling,
// Dense with its float weights, Normalize) beside the result, and
// validation compares sentence_embedding too.
func TestSentenceModelPasses(t *testing.T) {
	for _, c := range []struct {
		fixture string
		files   []string
	}{
		{"st-bert-wmean-dense", []string{"modules.json", "1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors",
			"3_Dense/config.json", "3_Dense/pytorch_model.bin", "4_Normalize/.keep"}},
		{"st-qwen3-last", []string{"modules.json", "1_Pooling/config.json", "2_Normalize/.keep"}},
	} {
		passes := map[string]Pass{"int8": schemePass(quantize.Int8), "fp16": schemePass(quantize.FP16),
			"convert": func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
				return convert.DedupeShared(g, cfg)
			}}
		if c.fixture == "st-bert-wmean-dense" { // its weights are f16 already
			delete(passes, "fp16")
		}
		for name, pass := range passes {
			t.Run(c.fixture+"/"+name, func(t *testing.T) {
				dst := filepath.Join(t.TempDir(), "out")
				res, err := Build(context.Background(), filepath.Join(models, c.fixture), dst, name, pass, Options{})
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range c.files {
					if !slices.Contains(res.Document.Files, f) {
						t.Errorf("files %v: no %s", res.Document.Files, f)
					}
					src, err1 := os.ReadFile(filepath.Join(models, c.fixture, f))
					got, err2 := os.ReadFile(filepath.Join(dst, f))
					if err1 != nil || err2 != nil || string(src) != string(got) {
						t.Errorf("%s not copied as it is: %v %v", f, err1, err2)
					}
				}
				v := res.Document.Validation
				i := slices.IndexFunc(v.Outputs, func(o forward.OutputReport) bool { return o.Name == forward.OutputSentenceEmbedding })
				if i < 0 || !v.Passed {
					t.Fatalf("passed %v, outputs %+v", v.Passed, v.Outputs)
				}
				t.Logf("%s %s: sentence_embedding cosine %.7f", c.fixture, name, v.Outputs[i].Cosine)
			})
		}
	}
}
