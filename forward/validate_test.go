package forward

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestCompareKnownValues(t *testing.T) {
	ref := &Output{Name: OutputLogits, Shape: []int{1, 2, 3}, Data: []float32{1, 0, 0, 2, 2, 5}}
	cand := &Output{Name: OutputLogits, Shape: []int{1, 2, 3}, Data: []float32{0, 1, 0, 2, 2, 5}}
	m, err := Compare(ref, cand)
	if err != nil {
		t.Fatal(err)
	}
	e := math.E
	wantKL := (e - 1) / (e + 2) / 2 // row 0: (e-1)/(e+2); row 1: 0
	if m.Elements != 6 || m.MaxAbsError != 1 || !near(m.MeanAbsError, 2.0/6, 1e-12) ||
		m.Cosine != 0 || !near(m.MeanCosine, 0.5, 1e-12) || !m.Logits || m.Top1Agreement != 0.5 ||
		!near(m.KLDivergence, wantKL, 1e-9) || !near(m.MaxKLDivergence, (e-1)/(e+2), 1e-9) || m.NonFinite != 0 {
		t.Errorf("Compare = %+v; want KL %g", m, wantKL)
	}

	same, err := Compare(ref, ref)
	if err != nil {
		t.Fatal(err)
	}
	if same.MaxAbsError != 0 || same.MeanAbsError != 0 || !near(same.Cosine, 1, 1e-12) || same.Top1Agreement != 1 || same.KLDivergence != 0 {
		t.Errorf("Compare(x, x) = %+v", same)
	}

	hidden := &Output{Name: OutputLastHiddenState, Shape: []int{1, 1, 2}, Data: []float32{3, 4}}
	scaled := &Output{Name: OutputLastHiddenState, Shape: []int{1, 1, 2}, Data: []float32{6, 8}}
	m, _ = Compare(hidden, scaled)
	if m.Logits || m.Top1Agreement != 0 || !near(m.Cosine, 1, 1e-12) || m.MaxAbsError != 4 {
		t.Errorf("hidden states: %+v", m)
	}
}

func TestCompareNonFiniteAndShapes(t *testing.T) {
	ref := &Output{Name: OutputLogits, Shape: []int{1, 2, 2}, Data: []float32{1, 2, 3, 4}}
	bad := &Output{Name: OutputLogits, Shape: []int{1, 2, 2}, Data: []float32{1, float32(math.NaN()), 3, float32(math.Inf(1))}}
	m, err := Compare(ref, bad)
	if err != nil {
		t.Fatal(err)
	}
	if m.NonFinite != 2 || m.Elements != 2 || m.MaxAbsError != 0 {
		t.Errorf("non-finite: %+v", m)
	}
	fails := Thresholds{}.Check(m)
	if len(fails) != 1 || !strings.Contains(fails[0], "NaN") {
		t.Errorf("Check of NaN output with no limits: %v", fails)
	}
	if _, err := json.Marshal(m); err != nil {
		t.Errorf("metrics of a NaN output do not marshal: %v", err)
	}
	other := &Output{Name: OutputLogits, Shape: []int{1, 4}, Data: []float32{1, 2, 3, 4}}
	if _, err := Compare(ref, other); !errors.Is(err, ErrIncompatible) {
		t.Errorf("shape mismatch: %v", err)
	}
}

func TestThresholdsCheck(t *testing.T) {
	th := Thresholds{MaxAbsError: 0.1, MeanAbsError: 0.01, MinCosine: 0.99, MinTop1: 0.9, MaxKL: 0.01}
	good := Metrics{MaxAbsError: 0.05, MeanAbsError: 0.001, Cosine: 0.995, Logits: true, Top1Agreement: 0.95, KLDivergence: 0.001}
	if f := th.Check(good); len(f) != 0 {
		t.Errorf("good metrics fail: %v", f)
	}
	bad := Metrics{MaxAbsError: 0.2, MeanAbsError: 0.02, Cosine: 0.9, Logits: true, Top1Agreement: 0.5, KLDivergence: 0.1}
	f := th.Check(bad)
	for _, want := range []string{"max abs", "mean abs", "cosine", "top-1", "KL"} {
		if !slices.ContainsFunc(f, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("Check(bad) = %v, missing %q", f, want)
		}
	}
	bad.Logits = false // top-1 and KL apply to logits only
	if f := th.Check(bad); len(f) != 3 {
		t.Errorf("hidden-state check = %v", f)
	}
	if f := (Thresholds{}).Check(bad); len(f) != 0 {
		t.Errorf("zero thresholds check something: %v", f)
	}
	for _, k := range Kinds() {
		if _, err := DefaultThresholds(k); err != nil {
			t.Error(err)
		}
	}
	if _, err := DefaultThresholds("fp4"); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestInferKind(t *testing.T) {
	f32 := Info{WeightDType: weights.F32}
	for _, c := range []struct {
		ref, cand Info
		want      Kind
	}{
		{f32, f32, KindExact},
		{f32, Info{WeightDType: weights.F16}, KindF16},
		{f32, Info{WeightDType: weights.BF16}, KindBF16},
		{Info{WeightDType: weights.F16}, Info{WeightDType: weights.F16}, KindExact},
		{Info{WeightDType: weights.BF16}, Info{WeightDType: weights.F16}, KindF16},
		{Info{WeightDType: weights.F16}, f32, KindExact},
		{f32, Info{WeightDType: weights.I8, Quantized: true}, KindInt8},
		{f32, Info{WeightDType: weights.U8, Quantized: true, Quantization: "gguf"}, KindKQuant},
	} {
		if got := InferKind(c.ref, c.cand); got != c.want {
			t.Errorf("InferKind(%v, %v) = %s, want %s", c.ref.WeightDType, c.cand.WeightDType, got, c.want)
		}
	}
}

func TestValidationInputs(t *testing.T) {
	a := ValidationInputs(7, []int{3, 50, 1}, 100)
	b := ValidationInputs(7, []int{3, 50, 1}, 100)
	c := ValidationInputs(8, []int{3, 50, 1}, 100)
	if len(a) != 3 || len(a[0]) != 3 || len(a[1]) != 50 || len(a[2]) != 1 {
		t.Fatalf("lengths: %v", a)
	}
	seen := map[int]bool{}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Errorf("sequence %d differs between two calls with the same seed", i)
		}
		for _, id := range a[i] {
			if id < 0 || id >= 100 {
				t.Errorf("id %d outside the vocabulary", id)
			}
			seen[id] = true
		}
	}
	if slices.Equal(a[1], c[1]) {
		t.Error("seeds 7 and 8 give the same ids")
	}
	if len(seen) < 20 {
		t.Errorf("54 draws from 100 ids gave only %d distinct ids", len(seen))
	}
}

func TestValidateFixtures(t *testing.T) {
	ctx := context.Background()
	ref := loadModel(t, filepath.Join(fixtures, "llama-tiny-st"), 2)
	for _, c := range []struct {
		cand string
		kind Kind
	}{
		{"llama-tiny-st", KindExact},
		{"llama-tiny-f16-st", KindF16},
		{"llama-tiny-bf16-st", KindBF16},
	} {
		cand := loadModel(t, filepath.Join(fixtures, c.cand), 2)
		rep, err := Validate(ctx, ref, cand, ValidateOptions{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Kind != c.kind || !rep.Passed || rep.Err() != nil || len(rep.Outputs) != 2 {
			t.Errorf("%s: report %+v", c.cand, rep)
		}
		if !slices.Equal(rep.Lengths, DefaultLengths) {
			t.Errorf("%s: lengths %v", c.cand, rep.Lengths)
		}
		lg := rep.Outputs[1]
		if lg.Name != OutputLogits || !lg.Logits || lg.Elements != 120*256 {
			t.Errorf("%s: logits report %+v", c.cand, lg)
		}
		if c.kind == KindExact && (lg.MaxAbsError != 0 || lg.Top1Agreement != 1) {
			t.Errorf("model against itself: %+v", lg)
		}
		if c.kind != KindExact && (lg.MaxAbsError == 0 || lg.KLDivergence == 0) {
			t.Errorf("%s: no difference measured: %+v", c.cand, lg)
		}
	}

	// Half precision judged as an exact conversion fails.
	f16 := loadModel(t, filepath.Join(fixtures, "llama-tiny-f16-st"), 2)
	rep, err := Validate(ctx, ref, f16, ValidateOptions{Kind: KindExact})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed || !errors.Is(rep.Err(), ErrValidationFailed) || len(rep.Failures) == 0 {
		t.Errorf("f16 as exact: passed=%v failures=%v", rep.Passed, rep.Failures)
	}
	// Overridden thresholds replace the kind's defaults.
	rep, err = Validate(ctx, ref, f16, ValidateOptions{Kind: KindExact, Thresholds: &Thresholds{MinCosine: 0.99}})
	if err != nil || !rep.Passed || rep.Thresholds.MaxAbsError != 0 {
		t.Errorf("overridden thresholds: %v %+v", err, rep)
	}
}

func TestValidateDetectsBrokenCandidate(t *testing.T) {
	dir := filepath.Join(fixtures, "llama-tiny-st")
	ref := loadModel(t, dir, 2)
	// The candidate's second layer MLP is scaled by 1.5, as a broken
	// conversion might do.
	g := graphWithout(t, dir, nil, func(tn *weights.Tensor) *weights.Tensor {
		if tn.Name != "model.layers.1.mlp.down_proj.weight" {
			return nil
		}
		v, _ := tn.Float32s()
		for i := range v {
			v[i] *= 1.5
		}
		r, _ := weights.FromFloat32(tn.Name, tn.DType, tn.Shape, v)
		return r
	})
	cand, err := Load(g, nil, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds() {
		if k == KindPruned || k == KindInt4 {
			// Lenient by design: pruning, and 4-bit weights on random
			// fixtures, change outputs more than this (artifact's
			// TestSwappedNibblesFailValidation is int4's broken case).
			continue
		}
		rep, err := Validate(context.Background(), ref, cand, ValidateOptions{Kind: k})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Passed || !errors.Is(rep.Err(), ErrValidationFailed) {
			t.Errorf("kind %s: broken candidate passes: %+v", k, rep.Outputs)
		}
	}
}

// fakeRunner is a Runner with a given Info whose Run must not be reached.
type fakeRunner struct{ info Info }

func (f fakeRunner) Info() Info { return f.info }
func (f fakeRunner) Run(context.Context, []int) (*Outputs, error) {
	return nil, errors.New("fakeRunner.Run called")
}

func TestValidateRefusesIncompatible(t *testing.T) {
	ctx := context.Background()
	llama := loadModel(t, filepath.Join(fixtures, "llama-tiny-st"), 1)
	for _, c := range []struct {
		name       string
		ref, cand  Runner
		wantInText string
	}{
		{"llama vs qwen2", llama, loadModel(t, filepath.Join(fixtures, "qwen2-bias-st"), 1), "Qwen2ForCausalLM"},
		{"bert vs bert classifier", loadModel(t, filepath.Join(fixtures, "bert-bin"), 1),
			loadModel(t, filepath.Join(fixtures, "bert-cls-st"), 1), "BertForSequenceClassification"},
		{"vocabulary", llama, fakeRunner{info: func() Info { i := llama.Info(); i.VocabSize = 300; return i }()}, "300"},
		{"outputs", llama, fakeRunner{info: func() Info { i := llama.Info(); i.Outputs = i.Outputs[:1]; return i }()}, "outputs"},
	} {
		_, err := Validate(ctx, c.ref, c.cand, ValidateOptions{})
		if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), c.wantInText) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestValidateLengthsAndJSON(t *testing.T) {
	m := loadModel(t, filepath.Join(fixtures, "gpt2-model-st"), 1) // 20 positions
	rep, err := Validate(context.Background(), m, m, ValidateOptions{Seed: 9, Sequences: 5, Lengths: []int{3, 64}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Lengths, []int{3, 20, 3, 20, 3}) {
		t.Errorf("lengths %v, want cut to 20 positions", rep.Lengths)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Passed     bool   `json:"passed"`
		Kind       string `json:"kind"`
		Seed       uint64 `json:"seed"`
		Thresholds map[string]float64
		Reference  struct {
			Architecture string `json:"architecture"`
			WeightDType  string `json:"weight_dtype"`
		} `json:"reference"`
		Outputs []map[string]any `json:"outputs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.Passed || doc.Kind != "exact" || doc.Seed != 9 || doc.Reference.Architecture != "GPT2Model" ||
		doc.Reference.WeightDType != "F32" || len(doc.Outputs) != 1 || doc.Thresholds["max_abs_error"] != 1e-4 {
		t.Errorf("JSON report: %s", b)
	}
	o := doc.Outputs[0]
	for _, k := range []string{"name", "max_abs_error", "mean_abs_error", "cosine_similarity", "passed"} {
		if _, ok := o[k]; !ok {
			t.Errorf("output report has no %q: %s", k, b)
		}
	}
	if _, err := Validate(context.Background(), m, m, ValidateOptions{Lengths: []int{0}}); !errors.Is(err, ErrInput) {
		t.Errorf("length 0: %v", err)
	}
}

// Judge applies other limits to a report's metrics.
func TestReportJudge(t *testing.T) {
	r := &Report{Passed: false, Failures: []string{"logits: old"}, Outputs: []OutputReport{
		{Name: "last_hidden_state", Metrics: Metrics{Cosine: 0.995}},
		{Name: "logits", Metrics: Metrics{Cosine: 0.995, Logits: true, Top1Agreement: 0.9, KLDivergence: 0.01}},
	}}
	r.Judge(Thresholds{MinCosine: 0.99, MinTop1: 0.8, MaxKL: 0.05})
	if !r.Passed || len(r.Failures) != 0 || !r.Outputs[0].Passed || !r.Outputs[1].Passed || r.Thresholds.MinCosine != 0.99 {
		t.Errorf("lenient: %+v", r)
	}
	r.Judge(Thresholds{MinCosine: 0.999})
	if r.Passed || len(r.Failures) != 2 || r.Outputs[1].Passed || !strings.HasPrefix(r.Failures[1], "logits: cosine") {
		t.Errorf("strict: %+v", r)
	}
}

// TestValidateBounds: more sequences than MaxSequences, or a length beyond
// MaxLength, are refused before anything runs; lengths beyond a Llama
// model's max_position_embeddings (which Run does not enforce) are cut to
// it, as for the families with a position table.
func TestValidateBounds(t *testing.T) {
	ctx := context.Background()
	m := loadModel(t, filepath.Join(fixtures, "llama-gqa-bin"), 1) // 48 positions
	if i := m.Info(); i.MaxPositions != 0 || i.Positions != 48 {
		t.Fatalf("max positions %d, positions %d", i.MaxPositions, i.Positions)
	}
	for _, o := range []ValidateOptions{
		{Sequences: MaxSequences + 1},
		{Sequences: 1_000_000},
		{Lengths: []int{3, MaxLength + 1}},
	} {
		if _, err := Validate(ctx, m, m, o); !errors.Is(err, ErrInput) {
			t.Errorf("%+v: %v, want ErrInput", o, err)
		}
	}
	rep, err := Validate(ctx, m, m, ValidateOptions{Sequences: 3, Lengths: []int{5, 64}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Lengths, []int{5, 48, 5}) {
		t.Errorf("lengths %v, want 64 cut to 48 positions", rep.Lengths)
	}
}

// batchCounter is a BatchRunner that records the sizes of its batches.
type batchCounter struct {
	*Model
	sizes []int
}

func (b *batchCounter) RunBatch(ctx context.Context, inputs [][]int) ([]*Outputs, error) {
	n := 0
	for _, ids := range inputs {
		n += len(ids)
	}
	b.sizes = append(b.sizes, n)
	return b.Model.RunBatch(ctx, inputs)
}

// TestValidateBatches: Validate runs its sequences through a model in
// batches whose outputs stay within batchElements, and the report is that
// of one batch.
func TestValidateBatches(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(fixtures, "gpt2-lm-bin")
	ref, cand := loadModel(t, dir, 1), loadModel(t, filepath.Join(fixtures, "gpt2-bf16-st"), 1)
	opts := ValidateOptions{Seed: 4, Sequences: 9, Lengths: []int{7, 16, 31}}
	whole, err := Validate(ctx, &batchCounter{Model: ref}, &batchCounter{Model: cand}, opts)
	if err != nil {
		t.Fatal(err)
	}
	width := ref.Info().HiddenSize + ref.Info().VocabSize
	defer func(n int) { batchElements = n }(batchElements)
	batchElements = 40*width + 40*40 // at most 40 tokens at once
	r, c := &batchCounter{Model: ref}, &batchCounter{Model: cand}
	parts, err := Validate(ctx, r, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.sizes) < 3 || !slices.Equal(r.sizes, c.sizes) {
		t.Fatalf("batches of %v and %v tokens, want several", r.sizes, c.sizes)
	}
	total := 0
	for _, n := range r.sizes {
		total += n
		if n > 40 {
			t.Errorf("a batch of %d tokens, above the budget of 40", n)
		}
	}
	if total != 3*(7+16+31) {
		t.Errorf("%d tokens run, want %d", total, 3*(7+16+31))
	}
	if parts.Passed != whole.Passed || len(parts.Outputs) != len(whole.Outputs) {
		t.Fatalf("batched report %+v, whole %+v", parts, whole)
	}
	for i, o := range parts.Outputs {
		w := whole.Outputs[i]
		if o.Elements != w.Elements || math.Abs(o.MaxAbsError-w.MaxAbsError) > 1e-6 || math.Abs(o.Cosine-w.Cosine) > 1e-9 {
			t.Errorf("%s: batched %+v, whole %+v", o.Name, o.Metrics, w.Metrics)
		}
	}
}
