package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// withTokenizer copies the fixture model to a temporary directory and
// writes a tokenizer.json there that makes each character of the built-in
// text set a token (the vocab-3 most frequent ones ids 3 and up, the
// others <unk> 2), with <s> (1) first when bos.
func withTokenizer(t testing.TB, fixture string, vocab int, bos bool) string {
	t.Helper()
	dir := bareCopy(t, fixture)
	freq := map[string]int{}
	for _, tx := range forward.BuiltinTexts() {
		for _, r := range tx.Text {
			freq[string(r)]++
		}
	}
	chars := make([]string, 0, len(freq))
	for c := range freq {
		chars = append(chars, c)
	}
	sort.Slice(chars, func(i, j int) bool {
		if freq[chars[i]] != freq[chars[j]] {
			return freq[chars[i]] > freq[chars[j]]
		}
		return chars[i] < chars[j]
	})
	v := map[string]int{"<pad>": 0, "<s>": 1, "<unk>": 2}
	for i, c := range chars {
		if 3+i >= vocab {
			break
		}
		v[c] = 3 + i
	}
	doc := map[string]any{
		"added_tokens":  []any{map[string]any{"id": 1, "content": "<s>", "special": true}},
		"pre_tokenizer": map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "(?s)."}, "behavior": "Isolated", "invert": false},
		"model":         map[string]any{"type": "WordLevel", "vocab": v, "unk_token": "<unk>"},
	}
	if bos {
		doc["post_processor"] = map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair":           []any{map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []any{1}, "tokens": []any{"<s>"}}}}
	}
	data, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bareCopy copies the config and weights of a fixture model, and none of
// its tokenizer files, to a temporary directory.
func bareCopy(t testing.TB, fixture string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), fixture)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(models, fixture))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "config.json" && !weightFile(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(models, fixture, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func schemePass(s quantize.Scheme) Pass {
	return func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		return quantize.Quantize(g, cfg, quantize.Options{Scheme: s})
	}
}

// The int8 and fp16 variants of fixtures with a tokenizer report
// perplexity ratios on the text, within the defaults of their kind. Run
// with -v for the values (README quotes them).
func TestFixturesPerplexity(t *testing.T) {
	for _, fx := range []struct {
		name  string
		vocab int
		bos   bool
	}{{"llama-text-st", 0, true}, {"llama-tiny-st", 256, true}, {"gpt2-lm-bin", 200, false}, {"llama-gqa-bin", 0, true}, {"qwen2-bias-st", 0, true}, {"mistral-bin", 0, true}} {
		vocab := fx.vocab
		src := textLM
		if fx.name == "llama-text-st" {
			// trained on the text: has its own tokenizer
		} else if vocab == 0 {
			raw, err := os.ReadFile(filepath.Join(models, fx.name, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				VocabSize int `json:"vocab_size"`
			}
			json.Unmarshal(raw, &c)
			vocab = c.VocabSize
		}
		if fx.name != "llama-text-st" {
			src = withTokenizer(t, fx.name, vocab, fx.bos)
		}
		for _, s := range []quantize.Scheme{quantize.FP16, quantize.BF16, quantize.Int8} {
			t.Run(fmt.Sprintf("%s/%s", s, fx.name), func(t *testing.T) {
				res, err := Build(context.Background(), src, filepath.Join(t.TempDir(), "out"), "quantize", schemePass(s), Options{})
				if err != nil {
					t.Fatal(err)
				}
				v := res.Document.Validation
				if !v.Passed || v.Text == nil || v.Text.Perplexity == nil || v.Text.Perplexity.Predictions < 1000 {
					t.Fatalf("no perplexity: %+v", v.Text)
				}
				p := v.Text.Perplexity
				if p.Ratio > v.Thresholds.MaxPerplexityRatio || v.Thresholds.MaxPerplexityRatio == 0 {
					t.Errorf("ratio %v, limit %v", p.Ratio, v.Thresholds.MaxPerplexityRatio)
				}
				if p.KLDivergence > v.Thresholds.MaxTextKL || p.Top1Agreement < v.Thresholds.MinTextTop1 || v.Thresholds.MaxTextKL == 0 || v.Thresholds.MinTextTop1 == 0 {
					t.Errorf("text KL %v top-1 %v, limits %v %v", p.KLDivergence, p.Top1Agreement, v.Thresholds.MaxTextKL, v.Thresholds.MinTextTop1)
				}
				t.Logf("%-5s %-14s ppl %.6g -> %.6g ratio %.6f KL %.3g top-1 %.4f (%d predictions)", s, fx.name, p.Reference, p.Candidate, p.Ratio, p.KLDivergence, p.Top1Agreement, p.Predictions)
			})
		}
	}
}

// textLM is a tiny Llama trained on the built-in text set, with its
// tokenizer (testdata/train_textlm.py).
const textLM = "../testdata/textlm/llama-text-st"

// An int8 pass with a wrong scale on one layer's projection fails on the
// perplexity ratio of a model that predicts the text; the same pass on a
// model without tokenizer has no text in its report.
func TestBrokenScaleFailsPerplexity(t *testing.T) {
	src := textLM
	broken := brokenScale(1.3)
	res, err := Build(context.Background(), src, filepath.Join(t.TempDir(), "broken"), "quantize", broken, Options{})
	if !errors.Is(err, forward.ErrValidationFailed) {
		t.Fatalf("err = %v", err)
	}
	v := res.Document.Validation
	for _, want := range []string{"text: perplexity ratio", "text: KL divergence", "text: top-1 agreement"} {
		found := false
		for _, f := range v.Failures {
			found = found || strings.HasPrefix(f, want)
		}
		if !found {
			t.Errorf("failures %v: none is %q (%+v)", v.Failures, want, v.Text.Perplexity)
		}
	}
	t.Logf("broken scale: %+v; failures %v", *v.Text.Perplexity, v.Failures)

	res, err = Build(context.Background(), bareCopy(t, "llama-tiny-st"), filepath.Join(t.TempDir(), "plain"), "quantize", schemePass(quantize.Int8), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Document.Validation.Text != nil || res.Document.Validation.TextSkipped != "" {
		t.Errorf("a model without tokenizer has text rows: %+v", res.Document.Validation.Text)
	}
}

// brokenScale is an int8 pass that multiplies the scales of layer 0's
// down_proj by f.
func brokenScale(f float32) Pass {
	return func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out, changes, err := quantize.Quantize(g, cfg, quantize.Options{Scheme: quantize.Int8})
		if err != nil {
			return nil, nil, err
		}
		x, ok := out.Tensor("model.layers.0.mlp.down_proj.weight_scale")
		if !ok {
			return nil, nil, errors.New("no scale to break")
		}
		scales, err := x.Float32s()
		if err != nil {
			return nil, nil, err
		}
		for i := range scales {
			scales[i] *= f
		}
		data := make([]byte, x.NumBytes())
		if err := weights.EncodeFloat32(data, scales, x.DType); err != nil {
			return nil, nil, err
		}
		out.Replace(&weights.Tensor{Name: x.Name, DType: x.DType, Shape: x.Shape, Data: weights.Memory(data)})
		return out, changes, nil
	}
}

// TestTextKLFailsAlone: a milder break of the scales (×1.15) keeps the
// perplexity ratio and the KL of the logits (text and random ids mixed)
// within the int8 limits, not the KL divergence on the text; with the
// cosine limit off, that is the only failure.
func TestTextKLFailsAlone(t *testing.T) {
	th, err := forward.DefaultThresholds(forward.KindInt8)
	if err != nil {
		t.Fatal(err)
	}
	th.MinCosine = 0
	opts := Options{Validate: forward.ValidateOptions{Thresholds: &th}}
	res, err := Build(context.Background(), textLM, filepath.Join(t.TempDir(), "broken"), "quantize", brokenScale(1.15), opts)
	if !errors.Is(err, forward.ErrValidationFailed) {
		t.Fatalf("err = %v", err)
	}
	v := res.Document.Validation
	if len(v.Failures) != 1 || !strings.HasPrefix(v.Failures[0], "text: KL divergence") {
		t.Errorf("failures %v, want the text's KL divergence alone (%+v)", v.Failures, *v.Text.Perplexity)
	}
	// The same pass unbroken passes.
	res, err = Build(context.Background(), textLM, filepath.Join(t.TempDir(), "ok"), "quantize", brokenScale(1), opts)
	if err != nil {
		t.Fatalf("unbroken: %v (%v)", err, res.Document.Validation.Failures)
	}
}

// User texts and broken tokenizers.
func TestBuildTexts(t *testing.T) {
	src := withTokenizer(t, "llama-tiny-st", 256, true)
	opts := Options{Validate: forward.ValidateOptions{Texts: []forward.Text{{Name: "sample.txt", Text: "hello, world\n"}}}}
	res, err := Build(context.Background(), src, filepath.Join(t.TempDir(), "out"), "quantize", schemePass(quantize.FP16), opts)
	if err != nil {
		t.Fatal(err)
	}
	ins := res.Document.Validation.Text.Inputs
	if last := ins[len(ins)-1]; last.Name != "sample.txt" || last.Tokens != 13 {
		t.Errorf("inputs %+v", ins)
	}
	// --no-text
	opts.Validate.NoText = true
	res, err = Build(context.Background(), src, filepath.Join(t.TempDir(), "out"), "quantize", schemePass(quantize.FP16), opts)
	if err != nil || res.Document.Validation.Text != nil {
		t.Errorf("NoText: %v %+v", err, res.Document.Validation.Text)
	}
	opts.Validate.NoText = false
	// No tokenizer: the user's text cannot be encoded.
	_, err = Build(context.Background(), bareCopy(t, "llama-tiny-st"), filepath.Join(t.TempDir(), "out"), "quantize", schemePass(quantize.FP16), opts)
	if err == nil || !strings.Contains(err.Error(), "need the source's tokenizer") {
		t.Errorf("texts without tokenizer: %v", err)
	}
	// A tokenizer that does not load: validated without text, the report says why.
	os.WriteFile(filepath.Join(src, "tokenizer.json"), []byte(`{"model": {"type": "Nope"}}`), 0o644)
	res, err = Build(context.Background(), src, filepath.Join(t.TempDir(), "out"), "quantize", schemePass(quantize.FP16), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Document.Validation; v.Text != nil || !strings.Contains(v.TextSkipped, "does not load") {
		t.Errorf("broken tokenizer: text %+v, skipped %q", v.Text, v.TextSkipped)
	}
}
