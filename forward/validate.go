package forward

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/hubmirror/hubmirror/tokenizer"
	"github.com/hubmirror/hubmirror/weights"
)

var (
	// ErrIncompatible: two models cannot be compared (different
	// architectures, vocabularies or outputs).
	ErrIncompatible = errors.New("forward: models are not comparable")
	// ErrValidationFailed is wrapped by Report.Err when a threshold failed.
	ErrValidationFailed = errors.New("forward: validation failed")
)

// Kind is the kind of comparison, which sets the default thresholds: a
// conversion that keeps the numbers (exact), one to half precision (f16,
// bf16), or int8 quantization.
type Kind string

// The kinds of comparison.
const (
	KindExact Kind = "exact"
	KindF16   Kind = "f16"
	KindBF16  Kind = "bf16"
	KindInt8  Kind = "int8"
	// KindInt4 judges W4A16 (4-bit weights in groups), KindFP8 F8_E4M3
	// weights with per-channel scales.
	KindInt4 Kind = "int4"
	KindFP8  Kind = "fp8"
	// KindKQuant judges GGUF's 4- and 5-bit block types (Q4_0, Q4_K_M,
	// Q5_K_M: llama-quantize's mixes).
	KindKQuant Kind = "kquant"
	// KindPruned judges pruned models, whose outputs change by design: the
	// default only catches a broken result; set thresholds for a real one.
	KindPruned Kind = "pruned"
)

// Kinds lists the kinds of comparison.
func Kinds() []Kind {
	return []Kind{KindExact, KindF16, KindBF16, KindInt8, KindInt4, KindFP8, KindKQuant, KindPruned}
}

// Thresholds are the limits a candidate's outputs must meet. A zero field is
// not checked. The logit limits (MinTop1, MaxKL) apply to logits only,
// MaxPerplexityRatio, MaxTextKL and MinTextTop1 to the next-token
// predictions of causal language models validated on text.
type Thresholds struct {
	// MaxAbsError and MeanAbsError bound |ref-cand| over all values.
	MaxAbsError  float64 `json:"max_abs_error,omitempty"`
	MeanAbsError float64 `json:"mean_abs_error,omitempty"`
	// MinCosine bounds from below the lowest cosine similarity of a row.
	MinCosine float64 `json:"min_cosine_similarity,omitempty"`
	// MinTop1 bounds from below the fraction of positions whose top-1
	// token agrees.
	MinTop1 float64 `json:"min_top1_agreement,omitempty"`
	// MaxKL bounds the mean KL divergence of the softmax of the logits.
	MaxKL float64 `json:"max_kl_divergence,omitempty"`
	// MaxPerplexityRatio bounds the candidate's perplexity on the text
	// inputs divided by the reference's.
	MaxPerplexityRatio float64 `json:"max_perplexity_ratio,omitempty"`
	// MaxTextKL bounds the mean KL divergence of the next-token
	// distributions on the text; MinTextTop1 bounds from below the fraction
	// of the text's positions whose most likely next token agrees. Judged
	// apart from the logits' limits, which mix the text with random ids.
	MaxTextKL   float64 `json:"max_text_kl_divergence,omitempty"`
	MinTextTop1 float64 `json:"min_text_top1_agreement,omitempty"`
}

// DefaultThresholds returns the default limits of a kind. Exact conversions
// must reproduce the reference to f32 rounding; the others are judged by
// direction (cosine), agreement of the top token and distance of the
// distributions, which, unlike absolute errors, do not depend on the scale of
// a model's activations. The perplexity-ratio limits are 2.5-3 times the
// largest |ratio − 1| measured on the causal fixtures (fp16 0.0018, bf16
// 0.0134, int8 0.0124: artifact's TestFixturesPerplexity; the random-weight
// fixtures move most, the model trained on the text moves 1e-5, 7e-4 and
// 1.5e-3), and an exact conversion keeps the ratio within f32 rounding.
// The text KL and top-1 limits leave room above the largest KL and
// disagreement measured there (fp16 2.3e-6 and 0.0013, bf16 1.7e-4 and
// 0.0077, int8 7.0e-4 and 0.017) and stay well below what an int8 pass
// with one layer's scales ×1.3 gives (KL 0.11, top-1 0.92).
func DefaultThresholds(k Kind) (Thresholds, error) {
	switch k {
	case KindExact:
		return Thresholds{MaxAbsError: 1e-4, MeanAbsError: 1e-5, MinCosine: 0.99999, MinTop1: 1, MaxKL: 1e-6, MaxPerplexityRatio: 1.0001, MaxTextKL: 1e-6, MinTextTop1: 1}, nil
	case KindF16:
		return Thresholds{MinCosine: 0.999, MinTop1: 0.95, MaxKL: 1e-3, MaxPerplexityRatio: 1.005, MaxTextKL: 1e-4, MinTextTop1: 0.99}, nil
	case KindBF16:
		return Thresholds{MinCosine: 0.995, MinTop1: 0.9, MaxKL: 1e-2, MaxPerplexityRatio: 1.03, MaxTextKL: 2e-3, MinTextTop1: 0.97}, nil
	case KindInt8:
		return Thresholds{MinCosine: 0.99, MinTop1: 0.8, MaxKL: 5e-2, MaxPerplexityRatio: 1.04, MaxTextKL: 5e-3, MinTextTop1: 0.95}, nil
	case KindInt4:
		return Thresholds{MinCosine: 0.4, MinTop1: 0.5, MaxKL: 1, MaxPerplexityRatio: 1.6, MaxTextKL: 0.5, MinTextTop1: 0.75}, nil
	case KindFP8:
		return Thresholds{MinCosine: 0.9, MinTop1: 0.8, MaxKL: 6e-2, MaxPerplexityRatio: 1.12, MaxTextKL: 4e-2, MinTextTop1: 0.87}, nil
	case KindKQuant:
		// Measured on the decoder fixtures written as Q4_K_M and Q5_K_M
		// GGUF and read back (quantize's TestReadGGUFValidates): cosine
		// >= 0.96, top-1 >= 0.82, KL <= 0.046, on text (llama-tiny-st)
		// ratio 0.994, KL 0.036, top-1 0.85; on bench's random-weight
		// TinyLlama shapes (4 layers, vocabulary 32000: flat logits)
		// cosine 0.912, top-1 0.475, KL 0.056. The same fixtures with the
		// q/k rows left in Hugging Face's order give cosine 0.58-0.68, KL
		// 0.83-0.88, and llama-tiny-st with one down_proj ×1.5 KL 0.148
		// (TestValidateDetectsBrokenCandidate): KL and cosine judge,
		// top-1 only catches a collapse.
		return Thresholds{MinCosine: 0.85, MinTop1: 0.4, MaxKL: 0.1, MaxPerplexityRatio: 1.2, MaxTextKL: 0.15, MinTextTop1: 0.75}, nil
	case KindPruned:
		return Thresholds{MinCosine: 0.8}, nil
	}
	return Thresholds{}, fmt.Errorf("forward: unknown kind of comparison %q (exact, f16, bf16, int8, int4, fp8, kquant or pruned)", k)
}

// Check returns a description of every limit m breaks; none means it passes.
// Non-finite values always fail.
func (t Thresholds) Check(m Metrics) []string {
	var out []string
	if m.NonFinite > 0 {
		out = append(out, fmt.Sprintf("%d values are NaN or infinite", m.NonFinite))
	}
	if t.MaxAbsError > 0 && m.MaxAbsError > t.MaxAbsError {
		out = append(out, fmt.Sprintf("max abs error %.3g > %.3g", m.MaxAbsError, t.MaxAbsError))
	}
	if t.MeanAbsError > 0 && m.MeanAbsError > t.MeanAbsError {
		out = append(out, fmt.Sprintf("mean abs error %.3g > %.3g", m.MeanAbsError, t.MeanAbsError))
	}
	if t.MinCosine > 0 && m.Cosine < t.MinCosine {
		out = append(out, fmt.Sprintf("cosine similarity %.6f < %.6f", m.Cosine, t.MinCosine))
	}
	if m.Logits {
		if t.MinTop1 > 0 && m.Top1Agreement < t.MinTop1 {
			out = append(out, fmt.Sprintf("top-1 agreement %.4f < %.4f", m.Top1Agreement, t.MinTop1))
		}
		if t.MaxKL > 0 && m.KLDivergence > t.MaxKL {
			out = append(out, fmt.Sprintf("KL divergence %.3g > %.3g", m.KLDivergence, t.MaxKL))
		}
	}
	return out
}

// CheckPerplexity returns a description of every limit the perplexity
// comparison p breaks.
func (t Thresholds) CheckPerplexity(p *Perplexity) []string {
	var out []string
	if p.NonFinite > 0 {
		out = append(out, fmt.Sprintf("%d positions have NaN or infinite logits", p.NonFinite))
	}
	if t.MaxPerplexityRatio > 0 && p.Predictions > 0 && !(p.Ratio <= t.MaxPerplexityRatio) {
		out = append(out, fmt.Sprintf("perplexity ratio %.6g > %.6g (reference %.6g, candidate %.6g)", p.Ratio, t.MaxPerplexityRatio, p.Reference, p.Candidate))
	}
	if t.MaxTextKL > 0 && p.Predictions > 0 && !(p.KLDivergence <= t.MaxTextKL) {
		out = append(out, fmt.Sprintf("KL divergence %.3g > %.3g", p.KLDivergence, t.MaxTextKL))
	}
	if t.MinTextTop1 > 0 && p.Predictions > 0 && !(p.Top1Agreement >= t.MinTextTop1) {
		out = append(out, fmt.Sprintf("top-1 agreement %.4f < %.4f", p.Top1Agreement, t.MinTextTop1))
	}
	return out
}

// InferKind picks the kind of comparison from the candidate's weights:
// kquant for ggml's quantized blocks (a GGUF file), int8 when it is
// otherwise quantized, f16 or bf16 when its matrices are stored in a
// half-precision type the reference does not use, exact otherwise.
func InferKind(ref, cand Info) Kind {
	switch {
	case cand.Quantization == "gguf": // the 4- and 5-bit types need kquant's
		return KindKQuant
	case cand.Quantization == "int4":
		return KindInt4
	case cand.Quantization == "fp8":
		return KindFP8
	case cand.Quantized:
		return KindInt8
	case cand.WeightDType == ref.WeightDType:
		return KindExact
	case cand.WeightDType == weights.F16:
		return KindF16
	case cand.WeightDType == weights.BF16:
		return KindBF16
	}
	return KindExact
}

// Defaults of ValidateOptions.
var (
	DefaultSequences = 4
	DefaultLengths   = []int{7, 16, 33, 64}
)

// Limits of ValidateOptions: more sequences, or longer ones, tell nothing
// a validation needs and cost hours (the attention of a sequence of n
// tokens holds n² scores per thread).
const (
	MaxSequences = 1024
	MaxLength    = 4096
)

// batchElements bounds the values that the sequences Validate runs through
// a model at once hold: their outputs (tokens × (hidden + vocab)) and the
// attention scores of a head (tokens² per sequence and goroutine). So a
// validation's memory stays near one batch's activations whatever its
// number of sequences. The default inputs of a model with a 128k
// vocabulary fit in one batch.
var batchElements = 1 << 25

// ValidateOptions say what Validate runs and how it judges.
type ValidateOptions struct {
	// Seed seeds the input ids.
	Seed uint64
	// Sequences is the number of sequences, at most MaxSequences; 0 means
	// DefaultSequences.
	Sequences int
	// Lengths are the sequence lengths, used in turn, each at most
	// MaxLength; nil means DefaultLengths. Lengths beyond the models'
	// positions (Info.Positions, Info.MaxPositions) are cut to fit.
	Lengths []int
	// Kind selects the default thresholds; "" means InferKind.
	Kind Kind
	// Thresholds, when not nil, replace the kind's defaults.
	Thresholds *Thresholds
	// Tokenizer, when set (the reference model's), adds text inputs: the
	// built-in set (BuiltinTexts), then Texts, at most MaxTextTokens
	// tokens in windows of at most TextWindow positions.
	Tokenizer *tokenizer.Tokenizer
	// Texts are the user's texts; they need a Tokenizer.
	Texts []Text
	// NoText leaves the text inputs out (Tokenizer and Texts unused).
	NoText bool
	// PartialCandidate lets the candidate hold less than the reference: a
	// format that keeps the body and only some heads (an encoder's GGUF,
	// read back as its family's base class when its masked-LM head is not
	// written). The candidate may then be another class of the reference's
	// family, with a part of its outputs that includes last_hidden_state;
	// the outputs both have are compared, the others listed in
	// Report.NotCompared.
	PartialCandidate bool
}

// Report is the result of Validate; it marshals to the JSON document that
// hubmirror writes as validation.json.
type Report struct {
	// ReferenceName and CandidateName say where the models came from (a
	// path or URL); Validate leaves them empty for the caller to fill.
	ReferenceName string `json:"reference_name,omitempty"`
	CandidateName string `json:"candidate_name,omitempty"`

	Passed     bool       `json:"passed"`
	Kind       Kind       `json:"kind"`
	Thresholds Thresholds `json:"thresholds"`
	Reference  Info       `json:"reference"`
	Candidate  Info       `json:"candidate"`
	// Seed and Lengths reproduce the inputs: ValidationInputs(Seed, Lengths,
	// Reference.VocabSize).
	Seed    uint64         `json:"seed"`
	Lengths []int          `json:"lengths"`
	Outputs []OutputReport `json:"outputs"`
	// NotCompared lists the reference's outputs the candidate does not
	// have (ValidateOptions.PartialCandidate).
	NotCompared []string `json:"not_compared,omitempty"`

	// PaddedInputs is the number of right-padded copies of the Lengths
	// inputs (PaddedInputs) run after them: models whose
	// sequence-classification head skips a pad token (Info.PadTokenID) get
	// one per input.
	PaddedInputs int `json:"padded_inputs,omitempty"`
	// Text lists the text inputs, run after the Lengths ones, and the
	// perplexities; nil without a tokenizer.
	Text *TextReport `json:"text,omitempty"`
	// TextSkipped says why a reference with tokenizer files was validated
	// without text: its tokenizer does not load (set by the caller that
	// loads it) or gives ids outside the model's vocabulary.
	TextSkipped string `json:"text_skipped,omitempty"`
	// Failures lists every broken limit as "output: what".
	Failures []string `json:"failures,omitempty"`
}

// OutputReport is the comparison of one output over all sequences.
type OutputReport struct {
	Name string `json:"name"`
	Metrics
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
}

// Err returns nil for a passed report, else an error wrapping
// ErrValidationFailed that lists the failures.
func (r *Report) Err() error {
	if r.Passed {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrValidationFailed, strings.Join(r.Failures, "; "))
}

// Judge applies the limits t again to the metrics the report holds (a
// report read back from a mirror, judged by the thresholds in force now):
// it sets Thresholds, each output's verdict, Failures and Passed.
func (r *Report) Judge(t Thresholds) {
	r.Thresholds, r.Failures = t, nil
	for i := range r.Outputs {
		o := &r.Outputs[i]
		o.Failures = t.Check(o.Metrics)
		o.Passed = len(o.Failures) == 0
		for _, f := range o.Failures {
			r.Failures = append(r.Failures, o.Name+": "+f)
		}
	}
	r.Failures = append(r.Failures, r.textFailures()...)
	r.Passed = len(r.Failures) == 0
}

// textFailures are the limits the perplexity comparison breaks.
func (r *Report) textFailures() []string {
	if r.Text == nil || r.Text.Perplexity == nil {
		return nil
	}
	var out []string
	for _, f := range r.Thresholds.CheckPerplexity(r.Text.Perplexity) {
		out = append(out, "text: "+f)
	}
	return out
}

// Runner is what Validate needs of a model; *Model is one.
type Runner interface {
	Info() Info
	Run(ctx context.Context, ids []int) (*Outputs, error)
}

// BatchRunner is a Runner that can also run several inputs at once
// (Model.RunBatch); Validate then uses RunBatch, which reads each model's
// weights once per batch of inputs instead of once per input.
type BatchRunner interface {
	Runner
	RunBatch(ctx context.Context, inputs [][]int) ([]*Outputs, error)
}

// inputStream is the second PCG seed word of ValidationInputs.
const inputStream = 0x68756d6972726f72 // "humirror"

// ValidationInputs returns the deterministic input ids of a validation: one
// sequence per entry of lengths, ids drawn uniformly from [0, vocab) by a
// PCG generator seeded with (seed, inputStream).
func ValidationInputs(seed uint64, lengths []int, vocab int) [][]int {
	r := rand.New(rand.NewPCG(seed, inputStream))
	out := make([][]int, len(lengths))
	for i, n := range lengths {
		ids := make([]int, n)
		for j := range ids {
			ids[j] = r.IntN(vocab)
		}
		out[i] = ids
	}
	return out
}

// PaddedInputs returns a copy of each input of two or more ids with its
// last quarter (at least one id) replaced by pad: right padding, as a
// batch of texts is padded, where a sequence-classification head must
// read the last token that is not a pad.
func PaddedInputs(inputs [][]int, pad int) [][]int {
	var out [][]int
	for _, ids := range inputs {
		n := len(ids)
		if n < 2 {
			continue
		}
		p := append([]int(nil), ids...)
		for i := n - max(1, n/4); i < n; i++ {
			p[i] = pad
		}
		out = append(out, p)
	}
	return out
}

// Validate runs ref and cand on the same deterministic inputs and compares
// every output they share. It refuses (ErrIncompatible) models of different
// architectures, vocabularies or outputs. A candidate that breaks a limit
// gives a Report with Passed false and a nil error; Report.Err turns that
// into an error.
func Validate(ctx context.Context, ref, cand Runner, opts ValidateOptions) (*Report, error) {
	ri, ci := ref.Info(), cand.Info()
	outputs, notCompared, err := comparedOutputs(ri, ci, opts.PartialCandidate)
	if err != nil {
		return nil, err
	}
	switch {
	case ri.VocabSize != ci.VocabSize:
		return nil, fmt.Errorf("%w: reference vocabulary has %d tokens, candidate %d", ErrIncompatible, ri.VocabSize, ci.VocabSize)
	case ri.NumLabels != ci.NumLabels && slices.Contains(outputs, OutputLogits):
		return nil, fmt.Errorf("%w: reference has %d labels, candidate %d", ErrIncompatible, ri.NumLabels, ci.NumLabels)
	}
	kind := opts.Kind
	if kind == "" {
		kind = InferKind(ri, ci)
	}
	th, err := DefaultThresholds(kind)
	if err != nil {
		return nil, err
	}
	if opts.Thresholds != nil {
		th = *opts.Thresholds
	}
	seqs := opts.Sequences
	if seqs <= 0 {
		seqs = DefaultSequences
	}
	if seqs > MaxSequences {
		return nil, fmt.Errorf("%w: %d sequences, at most %d", ErrInput, seqs, MaxSequences)
	}
	lengths := opts.Lengths
	if len(lengths) == 0 {
		lengths = DefaultLengths
	}
	for _, n := range lengths {
		if n <= 0 || n > MaxLength {
			return nil, fmt.Errorf("%w: sequence length %d, want 1 to %d", ErrInput, n, MaxLength)
		}
	}
	maxLen := 0
	for _, p := range []int{ri.MaxPositions, ci.MaxPositions, ri.Positions, ci.Positions} {
		if p > 0 && (maxLen == 0 || p < maxLen) {
			maxLen = p
		}
	}
	run := make([]int, seqs)
	for i := range run {
		n := lengths[i%len(lengths)]
		if maxLen > 0 && n > maxLen {
			n = maxLen
		}
		run[i] = n
	}
	cmp := make([]comparison, len(outputs))
	inputs := ValidationInputs(opts.Seed, run, ri.VocabSize)
	var padded int
	if ri.PadTokenID != nil && *ri.PadTokenID >= 0 && *ri.PadTokenID < ri.VocabSize {
		pads := PaddedInputs(inputs, *ri.PadTokenID)
		inputs, padded = append(inputs, pads...), len(pads)
	}
	random := len(inputs)
	var text *TextReport
	var textSkipped string
	var windows []textWindow
	var ppl *perplexityAcc
	if opts.NoText {
		opts.Tokenizer, opts.Texts = nil, nil
	}
	if opts.Tokenizer == nil && len(opts.Texts) > 0 {
		return nil, fmt.Errorf("%w: texts to validate on need the reference model's tokenizer", ErrInput)
	}
	if opts.Tokenizer != nil {
		window := TextWindow
		if maxLen > 0 && maxLen < window {
			window = maxLen
		}
		var ins []TextInput
		ins, windows, err = encodeTexts(opts.Tokenizer, append(BuiltinTexts(), opts.Texts...), window, ri.VocabSize, MaxTextTokens)
		switch {
		case err != nil && len(opts.Texts) > 0:
			return nil, fmt.Errorf("%w: %w", ErrInput, err)
		case err != nil:
			// A tokenizer that does not fit the model: its weights are
			// still validated, and the report says why there is no text.
			textSkipped, windows = err.Error(), nil
		default:
			text = &TextReport{Inputs: ins, Window: window}
			for _, w := range windows {
				inputs = append(inputs, w.ids)
			}
			if causalLM(ri) {
				ppl = &perplexityAcc{}
			}
		}
	}
	logitsAt := slices.Index(outputs, OutputLogits)
	compare := func(k int, ro, co *Outputs) error {
		for i, name := range outputs {
			a, ok1 := ro.Get(name)
			b, ok2 := co.Get(name)
			if !ok1 || !ok2 {
				return fmt.Errorf("forward: output %q missing from a run", name)
			}
			if err := cmp[i].add(a, b); err != nil {
				return err
			}
			if i == logitsAt && ppl != nil && k >= random {
				if err := ppl.addWindow(windows[k-random], a, b); err != nil {
					return err
				}
			}
		}
		return nil
	}
	rb, ok1 := ref.(BatchRunner)
	cb, ok2 := cand.(BatchRunner)
	if ok1 && ok2 {
		k := 0
		for _, batch := range batches(inputs, ri.HiddenSize+ri.VocabSize) {
			ros, err := rb.RunBatch(ctx, batch)
			if err != nil {
				return nil, fmt.Errorf("reference: %w", err)
			}
			cos, err := cb.RunBatch(ctx, batch)
			if err != nil {
				return nil, fmt.Errorf("candidate: %w", err)
			}
			for j := range batch {
				if err := compare(k, ros[j], cos[j]); err != nil {
					return nil, err
				}
				k++
			}
		}
	} else {
		for k, ids := range inputs {
			ro, err := ref.Run(ctx, ids)
			if err != nil {
				return nil, fmt.Errorf("reference: %w", err)
			}
			co, err := cand.Run(ctx, ids)
			if err != nil {
				return nil, fmt.Errorf("candidate: %w", err)
			}
			if err := compare(k, ro, co); err != nil {
				return nil, err
			}
		}
	}
	if ppl != nil {
		text.Perplexity = ppl.result()
	}
	rep := &Report{Passed: true, Kind: kind, Thresholds: th, Reference: ri, Candidate: ci, Seed: opts.Seed, Lengths: run, PaddedInputs: padded, Text: text, TextSkipped: textSkipped,
		NotCompared: notCompared}
	for i, name := range outputs {
		m := cmp[i].metrics()
		fails := th.Check(m)
		rep.Outputs = append(rep.Outputs, OutputReport{Name: name, Metrics: m, Passed: len(fails) == 0, Failures: fails})
		for _, f := range fails {
			rep.Failures = append(rep.Failures, name+": "+f)
		}
	}
	rep.Failures = append(rep.Failures, rep.textFailures()...)
	rep.Passed = len(rep.Failures) == 0
	return rep, nil
}

// comparedOutputs returns the outputs Validate compares (the reference's,
// which the candidate must have all of unless partial) and those it does
// not compare, or an error wrapping ErrIncompatible for models that cannot
// be compared.
func comparedOutputs(ri, ci Info, partial bool) (outputs, notCompared []string, err error) {
	if ri.Family != ci.Family || (ri.Architecture != ci.Architecture && !partial) {
		return nil, nil, fmt.Errorf("%w: reference is %s (%s), candidate is %s (%s)", ErrIncompatible, ri.Architecture, ri.Family, ci.Architecture, ci.Family)
	}
	if !partial {
		if !slices.Equal(ri.Outputs, ci.Outputs) {
			return nil, nil, fmt.Errorf("%w: reference outputs %v, candidate outputs %v", ErrIncompatible, ri.Outputs, ci.Outputs)
		}
		return ri.Outputs, nil, nil
	}
	for _, o := range ci.Outputs {
		if !slices.Contains(ri.Outputs, o) {
			return nil, nil, fmt.Errorf("%w: the candidate's output %s is not the reference's (%v)", ErrIncompatible, o, ri.Outputs)
		}
	}
	if !slices.Contains(ci.Outputs, OutputLastHiddenState) {
		return nil, nil, fmt.Errorf("%w: the candidate has no %s (outputs %v)", ErrIncompatible, OutputLastHiddenState, ci.Outputs)
	}
	for _, o := range ri.Outputs {
		if slices.Contains(ci.Outputs, o) {
			outputs = append(outputs, o)
		} else {
			notCompared = append(notCompared, o)
		}
	}
	return outputs, notCompared, nil
}

// batches splits inputs into runs of consecutive sequences whose outputs
// (width values per token) and attention scores stay within
// batchElements, each at least one sequence.
func batches(inputs [][]int, width int) [][][]int {
	var out [][][]int
	start, elems := 0, 0
	for i, ids := range inputs {
		n := len(ids)*max(width, 1) + len(ids)*len(ids)
		if i > start && elems+n > batchElements {
			out = append(out, inputs[start:i])
			start, elems = i, 0
		}
		elems += n
	}
	if start < len(inputs) {
		out = append(out, inputs[start:])
	}
	return out
}
