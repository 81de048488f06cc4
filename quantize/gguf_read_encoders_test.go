package quantize

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

// ggufEncoderCase is an encoder fixture, the class its GGUF is read back
// as, and the source's outputs the file does not hold (the base models'
// poolers, which GGUF writes with a classifier only, and the heads
// llama.cpp does not compute).
type ggufEncoderCase struct {
	fixture, class string
	notCompared    []string
	config         map[string]any // changes to the fixture's config.json
}

var ggufEncoderCases = []ggufEncoderCase{
	{"bert-cls-st", "BertForSequenceClassification", nil, nil}, // pooler (cls) and classifier (cls.output)
	// Without architectures: the class told by the classifier's tensors.
	{"bert-cls-st", "bert", nil, map[string]any{"architectures": nil}},
	{"bert-bin", "BertModel", []string{forward.OutputPooler}, nil},
	{"bert-oldnames-bin", "BertModel", []string{forward.OutputPooler}, nil}, // gamma/beta
	{"roberta-cls-bin", "RobertaForSequenceClassification", nil, nil},
	{"roberta-mlm-st", "RobertaModel", []string{forward.OutputLogits}, nil},
	{"camembert-mlm-bin", "CamembertModel", []string{forward.OutputLogits}, nil},
	{"xlmr-model-st", "XLMRobertaModel", []string{forward.OutputPooler}, nil},
	{"distilbert-model-st", "DistilBertModel", nil, nil},
	{"distilbert-mlm-st", "DistilBertModel", []string{forward.OutputLogits}, nil},
	// DistilBERT's classifier (ReLU between two linear layers) is not
	// llama.cpp's cls; the fixture's body is made GELU, which llama.cpp's
	// bert graph computes.
	{"distilbert-cls-bin", "DistilBertModel", []string{forward.OutputLogits}, map[string]any{"activation": "gelu"}},
	{"modernbert-model-st", "ModernBertModel", nil, nil},
	{"modernbert-mlm-st", "ModernBertModel", []string{forward.OutputLogits}, nil},
	{"modernbert-cls-st", "ModernBertForSequenceClassification", nil, nil}, // mean pooling, GELU: llama.cpp's cls
}

// openFixture opens a fixture as the source of a GGUF file.
func openFixture(t *testing.T, fixture string) (*weights.Graph, *arch.Config) {
	t.Helper()
	g, err := formats.Open(filepath.Join("..", "testdata", "models", fixture))
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

// validatePartial validates the GGUF in dir against g as quantize --format
// gguf does (the outputs the file holds).
func validatePartial(t *testing.T, g *weights.Graph, dir string, kind forward.Kind) *forward.Report {
	t.Helper()
	cg, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cg.Close() })
	rep, err := forward.Validate(context.Background(), loadModel(t, g), loadModel(t, cg),
		forward.ValidateOptions{Kind: kind, Seed: 1, NoText: true, PartialCandidate: true})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestReadGGUFEncoders: the F32 GGUF of every encoder fixture reads back
// as its family's class for what the file holds, every tensor under the
// source's name (or its base model's) with the source's values, RoBERTa's
// position embeddings with zeros in the padding_idx + 1 rows the file
// leaves out; validated with exact's thresholds it passes, comparing every
// output but the heads the file does not hold.
func TestReadGGUFEncoders(t *testing.T) {
	for _, c := range ggufEncoderCases {
		t.Run(c.fixture, func(t *testing.T) {
			g, cfg := ggufSource(t, ggufReadCase{fixture: c.fixture, config: c.config})
			dir := writeGGUFDir(t, g, cfg, "f32")
			cg, err := formats.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer cg.Close()
			ccfg, err := arch.ParseConfig(cg.Config)
			if err != nil {
				t.Fatal(err)
			}
			if ccfg.Architecture() != c.class {
				t.Errorf("read back as %s, want %s", ccfg.Architecture(), c.class)
			}
			offset := 0
			if r := cfg.Roberta(); r != nil {
				offset = r.PadTokenID + 1
			}
			for _, x := range cg.Tensors() {
				src := sourceTensor(g, x.Name)
				if src == nil {
					t.Fatalf("GGUF gives %s, not in the source", x.Name)
				}
				if !slices.Equal(src.Shape, x.Shape) {
					t.Errorf("%s: shape %v, source %v", x.Name, x.Shape, src.Shape)
					continue
				}
				want, err := src.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				got, err := x.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				skip := 0
				if strings.HasSuffix(x.Name, "position_embeddings.weight") {
					skip = offset * int(x.Shape[1])
					if offset > 0 && slices.ContainsFunc(got[:skip], func(v float32) bool { return v != 0 }) {
						t.Errorf("%s: the first %d rows are not zeros", x.Name, offset)
					}
				}
				if !slices.Equal(got[skip:], want[skip:]) {
					t.Errorf("%s: values differ from the source's", x.Name)
				}
			}
			rep := validatePartial(t, g, dir, forward.KindExact)
			if !rep.Passed {
				t.Errorf("validation: %v", rep.Err())
			}
			if !slices.Equal(rep.NotCompared, c.notCompared) {
				t.Errorf("not compared %v, want %v", rep.NotCompared, c.notCompared)
			}
			if len(rep.Outputs) == 0 || rep.Outputs[0].Name != forward.OutputLastHiddenState {
				t.Errorf("outputs compared: %v", rep.Outputs)
			}
		})
	}
}

// sourceTensor finds the read-back tensor name in the source: as it is,
// under the base model's prefix, or under BERT's TensorFlow-era norm
// names.
func sourceTensor(g *weights.Graph, name string) *weights.Tensor {
	for _, p := range []string{"", "bert.", "roberta.", "distilbert.", "model."} {
		n := p + name
		for _, alt := range []string{n, strings.Replace(strings.Replace(n, "Norm.weight", "Norm.gamma", 1), "Norm.bias", "Norm.beta", 1)} {
			if t, ok := g.Tensor(alt); ok {
				return t
			}
		}
	}
	return nil
}

// TestReadGGUFEncodersValidate: the F16 and Q8_0 files of the encoder
// fixtures pass validation with f16's and int8's thresholds; files broken
// on purpose fail it: BERT's and RoBERTa's query and key written in each
// other's place, and RoBERTa's positions shifted by one (a writer that
// left out padding_idx rows, not padding_idx + 1).
func TestReadGGUFEncodersValidate(t *testing.T) {
	for _, c := range ggufEncoderCases {
		g, cfg := ggufSource(t, ggufReadCase{fixture: c.fixture, config: c.config})
		for _, typ := range []string{"f16", "q8_0"} {
			kind := forward.Kind(GGUFValidationKind(typ))
			if rep := validatePartial(t, g, writeGGUFDir(t, g, cfg, typ), kind); !rep.Passed {
				t.Errorf("%s %s (kind %s): %v", c.fixture, typ, kind, rep.Err())
			}
		}
	}

	broken := map[string]string{}
	q, k := ggufBertLayerNames[arch.BertQuery], ggufBertLayerNames[arch.BertKey]
	ggufBertLayerNames[arch.BertQuery], ggufBertLayerNames[arch.BertKey] = k, q
	for _, fixture := range []string{"bert-cls-st", "roberta-mlm-st"} {
		g, cfg := openFixture(t, fixture)
		broken[fixture+" q/k swapped"] = writeGGUFDir(t, g, cfg, "q8_0")
	}
	ggufBertLayerNames[arch.BertQuery], ggufBertLayerNames[arch.BertKey] = q, k

	g, cfg := openFixture(t, "roberta-mlm-st")
	broken["roberta-mlm-st positions shifted"] = writeGGUFDir(t, shiftedPositions(t, g), cfg, "q8_0")
	for what, dir := range broken {
		fixture, _, _ := strings.Cut(what, " ")
		src, _ := openFixture(t, fixture)
		rep := validatePartial(t, src, dir, forward.KindInt8)
		if rep.Passed || !errors.Is(rep.Err(), forward.ErrValidationFailed) {
			t.Errorf("%s: validation passed (%v)", what, rep.Err())
		}
	}
}

// shiftedPositions returns g with RoBERTa's position embeddings moved up
// one row (the last row repeated): the GGUF of it holds the rows from
// padding_idx + 2 on.
func shiftedPositions(t *testing.T, g *weights.Graph) *weights.Graph {
	t.Helper()
	out := weights.NewGraph()
	for _, x := range g.Tensors() {
		if strings.HasSuffix(x.Name, "embeddings.position_embeddings.weight") {
			v, err := x.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			cols := int(x.Shape[1])
			v = append(v[cols:], v[len(v)-cols:]...)
			y := &weights.Tensor{Name: x.Name, DType: weights.F32, Shape: x.Shape}
			y.Data = weights.SourceFunc(func() ([]byte, error) { return float32Bytes(v), nil })
			x = y
		}
		if err := out.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	out.Config, out.Files = g.Config, g.Files
	return out
}

// TestReadGGUFEncoderRefuses: a bert file whose config.json is another
// family's, a classification head under a config whose class has none,
// and RoBERTa's position rows that do not add up to
// max_position_embeddings are refused, saying why.
func TestReadGGUFEncoderRefuses(t *testing.T) {
	g, cfg := openFixture(t, "bert-cls-st")
	dir := writeGGUFDir(t, g, cfg, "f32")
	file := filepath.Join(dir, "model.gguf")
	cases := map[string]struct {
		config []byte
		want   string
	}{
		"modernbert": {readConfig(t, "modernbert-model-st"), "general.architecture bert"},
		"no head":    {readConfig(t, "bert-bin"), "its config.json's class BertModel has none"},
	}
	for name, c := range cases {
		if _, err := OpenGGUF(file, c.config); !errors.Is(err, ErrGGUFRead) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	g, cfg = openFixture(t, "roberta-mlm-st")
	dir = writeGGUFDir(t, g, cfg, "f32")
	longer := strings.Replace(string(readConfig(t, "roberta-mlm-st")), `"max_position_embeddings": 42`, `"max_position_embeddings": 43`, 1)
	if !strings.Contains(longer, "43") {
		t.Fatal("the fixture's config.json has no max_position_embeddings 42")
	}
	if _, err := OpenGGUF(filepath.Join(dir, "model.gguf"), []byte(longer)); !errors.Is(err, ErrGGUFRead) || !strings.Contains(err.Error(), "want 43 rows") {
		t.Errorf("positions: %v", err)
	}
}

func readConfig(t *testing.T, fixture string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "models", fixture, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
