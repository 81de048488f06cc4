package forward

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/tokenizer"
)

// charTokenizer returns a tokenizer.json that makes each character a token:
// the vocab-3 most frequent characters of the built-in text set get ids 3
// and up, the others <unk> (2); with bos, a template puts <s> (1) first.
// truncation > 0 configures the file's truncation.
func charTokenizer(t testing.TB, vocab int, bos bool, truncation int) []byte {
	t.Helper()
	freq := map[string]int{}
	for _, tx := range BuiltinTexts() {
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
		"version":       "1.0",
		"added_tokens":  []any{map[string]any{"id": 1, "content": "<s>", "special": true}},
		"pre_tokenizer": map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "(?s)."}, "behavior": "Isolated", "invert": false},
		"model":         map[string]any{"type": "WordLevel", "vocab": v, "unk_token": "<unk>"},
	}
	if bos {
		piece := func(kind, id string) map[string]any {
			return map[string]any{kind: map[string]any{"id": id, "type_id": 0}}
		}
		doc["post_processor"] = map[string]any{"type": "TemplateProcessing",
			"single":         []any{piece("SpecialToken", "<s>"), piece("Sequence", "A")},
			"pair":           []any{piece("SpecialToken", "<s>"), piece("Sequence", "A"), piece("Sequence", "B")},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []any{1}, "tokens": []any{"<s>"}}}}
	}
	if truncation > 0 {
		doc["truncation"] = map[string]any{"max_length": truncation, "strategy": "LongestFirst", "stride": 0, "direction": "Right"}
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func loadTokenizer(t testing.TB, data []byte) *tokenizer.Tokenizer {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Perplexity and KL of known distributions, computed by hand: the
// reference gives probabilities 0.1, 0.2, 0.3, 0.4 at every position and
// the window's targets have 0.4, 0.1, 0.2, so its perplexity is
// (1/(0.4·0.1·0.2))^(1/3) = 5; the candidate is uniform (perplexity 4).
func TestPerplexityKnownValues(t *testing.T) {
	ref := &Output{Name: OutputLogits, Shape: []int{1, 5, 4}}
	cand := &Output{Name: OutputLogits, Shape: []int{1, 5, 4}}
	for p := 0; p < 5; p++ {
		for i := 0; i < 4; i++ {
			ref.Data = append(ref.Data, float32(math.Log(float64(i+1))+7)) // a shift changes nothing
			cand.Data = append(cand.Data, -2)
		}
	}
	// <s> a b c </s>: from 1 to 4; targets 3, 0, 1 predicted by rows 0, 1, 2.
	w := textWindow{ids: []int{1, 3, 0, 1, 2}, from: 1, to: 4}
	var acc perplexityAcc
	if err := acc.addWindow(w, ref, cand); err != nil {
		t.Fatal(err)
	}
	got := acc.result()
	kl := 0.0
	for i := 1; i <= 4; i++ {
		p := float64(i) / 10
		kl += p * math.Log(p/0.25)
	}
	if got.Predictions != 3 || !near(got.Reference, 5, 1e-5) || !near(got.Candidate, 4, 1e-5) ||
		!near(got.Ratio, 0.8, 1e-6) || !near(got.KLDivergence, kl, 1e-6) || !near(got.MaxKLDivergence, kl, 1e-6) {
		t.Errorf("got %+v, want 3 predictions, perplexities 5 and 4, ratio 0.8, KL %g", got, kl)
	}
	// Without special tokens the first token has nothing before it.
	acc = perplexityAcc{}
	acc.addWindow(textWindow{ids: []int{3, 0, 1, 2, 2}, from: 0, to: 5}, ref, cand)
	if r := acc.result(); r.Predictions != 4 || !near(r.Reference, math.Pow(1/(0.1*0.2*0.3*0.3), 0.25), 1e-5) {
		t.Errorf("window from 0: %+v", r)
	}
	// A NaN logit leaves its position out and fails the check.
	cand.Data[5] = float32(math.NaN())
	acc = perplexityAcc{}
	acc.addWindow(w, ref, cand)
	r := acc.result()
	if r.NonFinite != 1 || r.Predictions != 2 || len(Thresholds{MaxPerplexityRatio: 2}.CheckPerplexity(r)) != 1 {
		t.Errorf("NaN logits: %+v", r)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Error(err)
	}
}

// Our perplexity of a fixture's logits equals PyTorch's cross-entropy
// (testdata/gen_perplexity.py), and so do the ratio and KL of the f16
// variant.
func TestPerplexityMatchesPyTorch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(fixtures, "..", "expected", "perplexity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Cases map[string]struct {
			IDs        []int   `json:"input_ids"`
			Perplexity float64 `json:"perplexity"`
		} `json:"cases"`
		Pairs []struct {
			Reference, Candidate string
			Ratio                float64 `json:"ratio"`
			KL                   float64 `json:"kl_divergence"`
		} `json:"pairs"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	logits := map[string]*Output{}
	for name, c := range want.Cases {
		out, err := loadModel(t, filepath.Join(fixtures, name), 1).Run(context.Background(), c.IDs)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := out.Get(OutputLogits)
		logits[name] = l
		var acc perplexityAcc
		if err := acc.addWindow(textWindow{ids: c.IDs, from: 0, to: len(c.IDs)}, l, l); err != nil {
			t.Fatal(err)
		}
		got := acc.result()
		if math.Abs(got.Reference/c.Perplexity-1) > 1e-4 || got.Ratio != 1 || got.KLDivergence != 0 {
			t.Errorf("%s: perplexity %v (ratio %v, KL %v), PyTorch %v", name, got.Reference, got.Ratio, got.KLDivergence, c.Perplexity)
		}
	}
	if len(want.Pairs) == 0 {
		t.Fatal("no pairs")
	}
	for _, p := range want.Pairs {
		ids := want.Cases[p.Reference].IDs
		var acc perplexityAcc
		acc.addWindow(textWindow{ids: ids, from: 0, to: len(ids)}, logits[p.Reference], logits[p.Candidate])
		got := acc.result()
		if math.Abs(got.Ratio-p.Ratio) > 1e-5 || math.Abs(got.KLDivergence-p.KL) > 1e-7 {
			t.Errorf("%s vs %s: ratio %v KL %v, PyTorch %v and %v", p.Reference, p.Candidate, got.Ratio, got.KLDivergence, p.Ratio, p.KL)
		}
	}
}

func TestValidateOnText(t *testing.T) {
	ctx := context.Background()
	ref := loadModel(t, filepath.Join(fixtures, "llama-tiny-st"), 0)
	cand := loadModel(t, filepath.Join(fixtures, "llama-tiny-f16-st"), 0)
	tok := loadTokenizer(t, charTokenizer(t, 256, true, 0))
	user := Text{Name: "mine.txt", Text: strings.Repeat("a user's own sample, 12345.\n", 40)}
	rep, err := Validate(ctx, ref, cand, ValidateOptions{Tokenizer: tok, Texts: []Text{user}})
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Text
	if tr == nil || tr.Perplexity == nil || tr.Window != 64 || len(tr.Inputs) != 4 {
		t.Fatalf("text report %+v", tr)
	}
	total, windows := 0, 0
	for i, in := range tr.Inputs {
		if in.Tokens < 100 || in.Windows != (in.Tokens+62)/63 || in.Cut {
			t.Errorf("input %+v: want all its tokens in windows of 63 and <s>", in)
		}
		if i < 3 && !strings.HasPrefix(in.Name, TextSetName+"/") {
			t.Errorf("input %d is %q", i, in.Name)
		}
		total += in.Tokens
		windows += in.Windows
	}
	if tr.Inputs[3].Name != "mine.txt" || tr.Inputs[3].Tokens != len(user.Text) {
		t.Errorf("user text %+v, want %d tokens", tr.Inputs[3], len(user.Text))
	}
	p := tr.Perplexity
	// each window scores every text token (<s> predicts the first)
	if p.Predictions != total || p.Ratio < 0.99 || p.Ratio > 1.01 || p.KLDivergence <= 0 || !rep.Passed {
		t.Errorf("perplexity %+v passed %v %v", p, rep.Passed, rep.Failures)
	}
	if rep.Outputs[1].Elements != (sum(rep.Lengths)+total+windows)*256 {
		t.Errorf("logits compared %d values: the text windows are not in the outputs' metrics", rep.Outputs[1].Elements)
	}
	t.Logf("f16: perplexity %.6g / %.6g, ratio %.7f, KL %.3g, top-1 %.4f on %d tokens", p.Reference, p.Candidate, p.Ratio, p.KLDivergence, p.Top1Agreement, p.Predictions)

	// The same model: ratio exactly 1. A tight ratio limit fails the f16
	// model, through Validate and through Judge.
	same, err := Validate(ctx, ref, ref, ValidateOptions{Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	if same.Text.Perplexity.Ratio != 1 || same.Text.Perplexity.KLDivergence != 0 || !same.Passed {
		t.Errorf("model against itself: %+v", same.Text.Perplexity)
	}
	// The roles swapped, the ratio is the inverse: the limit is put
	// halfway between 1 and the ratio above 1.
	worse, better := cand, ref
	if p.Ratio < 1 {
		worse, better = ref, cand
		rep, err = Validate(ctx, better, worse, ValidateOptions{Kind: KindF16, Tokenizer: tok, Texts: []Text{user}})
		if err != nil {
			t.Fatal(err)
		}
		if !near(rep.Text.Perplexity.Ratio, 1/p.Ratio, 1e-9) {
			t.Errorf("swapped: ratio %v, want %v", rep.Text.Perplexity.Ratio, 1/p.Ratio)
		}
	}
	th := rep.Thresholds
	th.MaxPerplexityRatio = 1 + (rep.Text.Perplexity.Ratio-1)/2
	tight, err := Validate(ctx, better, worse, ValidateOptions{Kind: KindF16, Tokenizer: tok, Texts: []Text{user}, Thresholds: &th})
	if err != nil {
		t.Fatal(err)
	}
	if tight.Passed || len(tight.Failures) != 1 || !strings.HasPrefix(tight.Failures[0], "text: perplexity ratio") {
		t.Errorf("ratio limit %v: passed %v, failures %v", th.MaxPerplexityRatio, tight.Passed, tight.Failures)
	}
	rep.Judge(th)
	if rep.Passed || len(rep.Failures) != 1 {
		t.Errorf("Judge: %v %v", rep.Passed, rep.Failures)
	}
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

func TestValidateTextOtherModels(t *testing.T) {
	ctx := context.Background()
	// GPT-2 without special tokens: windows of 32 text tokens, the first of
	// each window not scored.
	gpt2 := loadModel(t, filepath.Join(fixtures, "gpt2-lm-bin"), 0)
	rep, err := Validate(ctx, gpt2, gpt2, ValidateOptions{Tokenizer: loadTokenizer(t, charTokenizer(t, 200, false, 0))})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Text.Window != 32 || rep.Text.Perplexity == nil {
		t.Fatalf("gpt2: %+v", rep.Text)
	}
	tokens, windows := 0, 0
	for _, in := range rep.Text.Inputs {
		tokens += in.Tokens
		windows += in.Windows
	}
	if rep.Text.Perplexity.Predictions != tokens-windows {
		t.Errorf("gpt2: %d predictions of %d tokens in %d windows", rep.Text.Perplexity.Predictions, tokens, windows)
	}
	// An encoder: text inputs, no perplexity.
	bert := loadModel(t, filepath.Join(fixtures, "bert-cls-st"), 0)
	vocab := bert.Info().VocabSize
	rep, err = Validate(ctx, bert, bert, ValidateOptions{Tokenizer: loadTokenizer(t, charTokenizer(t, vocab, true, 0))})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Text == nil || len(rep.Text.Inputs) != 3 || rep.Text.Perplexity != nil || !rep.Passed {
		t.Errorf("bert: %+v", rep.Text)
	}
	// No tokenizer: no text, as before; texts without one are refused.
	rep, err = Validate(ctx, bert, bert, ValidateOptions{})
	if err != nil || rep.Text != nil {
		t.Errorf("no tokenizer: %v, text %+v", err, rep.Text)
	}
	if b, _ := json.Marshal(rep); strings.Contains(string(b), `"text"`) {
		t.Errorf("no tokenizer: the report has a text entry: %s", b)
	}
	if _, err := Validate(ctx, bert, bert, ValidateOptions{Texts: []Text{{Name: "x", Text: "abc"}}}); err == nil {
		t.Error("texts without a tokenizer: no error")
	}
	// A tokenizer whose ids do not fit the model: no text, the report says
	// why; with the user's texts, an error.
	wide := loadTokenizer(t, charTokenizer(t, 256, false, 0))
	rep, err = Validate(ctx, gpt2, gpt2, ValidateOptions{Tokenizer: wide})
	if err != nil || rep.Text != nil || !strings.Contains(rep.TextSkipped, "outside the model's vocabulary") || !rep.Passed {
		t.Errorf("ids beyond the vocabulary: %v, %+v, %q", err, rep.Text, rep.TextSkipped)
	}
	if _, err := Validate(ctx, gpt2, gpt2, ValidateOptions{Tokenizer: wide, Texts: []Text{{Name: "x", Text: "abc"}}}); err == nil || !strings.Contains(err.Error(), "outside the model's vocabulary") {
		t.Errorf("ids beyond the vocabulary with texts: %v", err)
	}
}

// A truncation in the tokenizer file cuts nothing of a text, and a long
// text is cut to the token budget.
func TestEncodeTextLimits(t *testing.T) {
	full := loadTokenizer(t, charTokenizer(t, 256, false, 0))
	cut := loadTokenizer(t, charTokenizer(t, 256, false, 10))
	text := "ab cd\nef gh\n\nij\nkl mn\nop\n\n\nqr st uv"
	want, err := encodeText(full, text, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodeText(cut, text, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(text) || !slicesEqual(got, want) {
		t.Errorf("with truncation %v, without %v", got, want)
	}
	long := []Text{{Name: "long", Text: strings.Repeat("abcdefgh\n\n", 3000)}}
	ins, windows, err := encodeTexts(full, long, 64, 256, MaxTextTokens)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || !ins[0].Cut || ins[0].Tokens != MaxTextTokens || len(windows) != (MaxTextTokens+63)/64 {
		t.Errorf("long text: %+v, %d windows", ins, len(windows))
	}
	for _, w := range windows {
		if len(w.ids) > 64 {
			t.Fatalf("window of %d", len(w.ids))
		}
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// textLM is a tiny Llama trained on the built-in text set with a byte
// tokenizer (testdata/train_textlm.py).
const textLM = "../testdata/textlm/llama-text-st"

// Validation on text of a model that predicts it: the windows and the
// perplexity equal what PyTorch computes (testdata/expected/textlm.json).
func TestPerplexityTrainedModel(t *testing.T) {
	raw, err := os.ReadFile("../testdata/expected/textlm.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Predictions int     `json:"predictions"`
		Perplexity  float64 `json:"perplexity"`
		Inputs      []struct {
			Name            string
			Tokens, Windows int
		} `json:"inputs"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(textLM)
	if err != nil {
		t.Fatal(err)
	}
	m := loadModel(t, textLM, 0)
	rep, err := Validate(context.Background(), m, m, ValidateOptions{Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Text.Inputs) != len(want.Inputs) {
		t.Fatalf("inputs %+v, want %+v", rep.Text.Inputs, want.Inputs)
	}
	for i, in := range rep.Text.Inputs {
		w := want.Inputs[i]
		if in.Name != TextSetName+"/"+w.Name || in.Tokens != w.Tokens || in.Windows != w.Windows {
			t.Errorf("input %d: %+v, PyTorch %+v", i, in, w)
		}
	}
	p := rep.Text.Perplexity
	if p.Predictions != want.Predictions || math.Abs(p.Reference/want.Perplexity-1) > 1e-5 || p.Ratio != 1 {
		t.Errorf("perplexity %+v, PyTorch %v on %d", p, want.Perplexity, want.Predictions)
	}
	if p.Reference > 3 {
		t.Errorf("perplexity %v: the model does not predict its text", p.Reference)
	}
}

// TestTextKLTop1Limits: each kind's text KL and top-1 limits pass the
// largest changes measured on the fixtures' variants of that kind
// (artifact's TestFixturesPerplexity) and fail those of an int8 pass with
// one layer's scales ×1.3; they are judged apart from the ratio, and Judge
// applies them to a report read back.
func TestTextKLTop1Limits(t *testing.T) {
	broken := &Perplexity{Predictions: 5674, Ratio: 1.137, KLDivergence: 0.109, Top1Agreement: 0.923}
	for _, c := range []struct {
		kind Kind
		ok   Perplexity
	}{
		{KindF16, Perplexity{Predictions: 4704, Ratio: 1, KLDivergence: 2.3e-6, Top1Agreement: 0.9987}},
		{KindBF16, Perplexity{Predictions: 4704, Ratio: 1, KLDivergence: 1.65e-4, Top1Agreement: 0.9923}},
		{KindInt8, Perplexity{Predictions: 4704, Ratio: 1, KLDivergence: 7.04e-4, Top1Agreement: 0.9830}},
	} {
		th, err := DefaultThresholds(c.kind)
		if err != nil {
			t.Fatal(err)
		}
		if f := th.CheckPerplexity(&c.ok); len(f) != 0 {
			t.Errorf("%s: measured %+v fails: %v", c.kind, c.ok, f)
		}
		th.MaxPerplexityRatio = 0 // the text's KL and top-1 alone
		f := th.CheckPerplexity(broken)
		if len(f) != 2 || !strings.HasPrefix(f[0], "KL divergence 0.109 >") || !strings.HasPrefix(f[1], "top-1 agreement 0.9230 <") {
			t.Errorf("%s: broken pass: %v", c.kind, f)
		}
	}
	exact, _ := DefaultThresholds(KindExact)
	if f := exact.CheckPerplexity(&Perplexity{Predictions: 10, Ratio: 1, Top1Agreement: 0.9}); len(f) != 1 {
		t.Errorf("exact, one top-1 change: %v", f)
	}
	// No predictions: nothing to judge.
	if f := exact.CheckPerplexity(&Perplexity{}); len(f) != 0 {
		t.Errorf("no predictions: %v", f)
	}
	rep := &Report{Text: &TextReport{Perplexity: broken}}
	rep.Judge(Thresholds{MaxTextKL: 0.2, MinTextTop1: 0.9})
	if !rep.Passed {
		t.Errorf("Judge: %v", rep.Failures)
	}
	rep.Judge(Thresholds{MaxTextKL: 0.1})
	if rep.Passed || len(rep.Failures) != 1 || !strings.HasPrefix(rep.Failures[0], "text: KL divergence") {
		t.Errorf("Judge: %v %v", rep.Passed, rep.Failures)
	}
}
