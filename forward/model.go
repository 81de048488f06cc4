// Package forward is hubmirror's native forward pass: it runs BERT
// (BertModel, BertForSequenceClassification), RoBERTa, XLM-RoBERTa and
// CamemBERT (*Model, *ForMaskedLM, *ForSequenceClassification), DistilBERT
// and MPNet (the same three), ModernBERT (the same three), GPT-2 (GPT2Model, GPT2LMHeadModel) and Llama-family
// (LlamaForCausalLM, Mistral, Qwen2), Qwen3, Gemma 1, 2 and 3 text and
// Phi-3 (Phi3ForCausalLM, also Phi-3.5-mini and Phi-4-mini)
// (*ForCausalLM, *Model), and the mixture-of-experts Mixtral, Qwen2-MoE and
// Qwen3-MoE (MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM,
// *Model; each token runs only the experts it is routed to)
// checkpoints at batch 1, computing what the Hugging Face transformers
// definitions compute in float32, and compares two models' outputs
// (Compare, Validate) to prove that a converted model still computes what its
// original did.
//
// A Model is built from a weights.Graph and its config: the weight matrices
// are used where they lie (views over mmap'd files) in their stored dtype
// (F32, F16, BF16, or I8 with per-channel or per-group scales); only small
// vectors (norms, biases) are converted to f32. Activations are f32 and all
// accumulation is in f32, as PyTorch computes on CPU.
package forward

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// Errors a caller can test for with errors.Is.
var (
	// ErrUnsupported: the architecture, or a feature of it (an activation,
	// a RoPE scaling type, a weight dtype), is not implemented.
	ErrUnsupported = errors.New("forward: unsupported")
	// ErrWeights: a tensor the architecture needs is missing or has the
	// wrong shape or dtype.
	ErrWeights = errors.New("forward: unusable weights")
	// ErrInput: the input ids are empty, out of the vocabulary or longer
	// than the model's positions.
	ErrInput = errors.New("forward: invalid input")
)

// Names of the outputs, as transformers names them.
const (
	OutputLastHiddenState = "last_hidden_state"
	OutputPooler          = "pooler_output"
	OutputLogits          = "logits"
)

// Options configure a Model.
type Options struct {
	// Threads is the number of goroutines the kernels use; 0 means
	// runtime.NumCPU().
	Threads int
	// BeforeLayer, when set, is called before each layer of a run and
	// before the pooler or head (for RunBatch: once per layer of the whole
	// batch, from one of its goroutines), and between the slices of rows
	// of a Linear product with a weight of more than 64 MB (a large head;
	// see releaseSliceBytes). Validation of large models passes
	// weights.Graph.Release, so that the pages of the layers already run
	// leave the resident set: memory then stays near one layer's weights
	// instead of the model's size.
	BeforeLayer func()
	// GGMLQ8Activations has the products of Q4_K and Q6_K weights of a
	// GGUF file with one row (a run of one token) round the activations
	// to 8 bits per block of 256 and take integer dot products, as
	// llama.cpp does (kernels.GGML.Q8Activations): faster, not exact, so
	// off by default and off in validation.
	GGMLQ8Activations bool
}

// Info describes a loaded model.
type Info struct {
	// Family is the arch family: "bert", "distilbert", "gemma", "gpt2",
	// "llama", "mixtral", "modernbert", "mpnet", "qwen2_moe", "qwen3", "qwen3_moe" or "roberta".
	Family string `json:"family"`
	// Architecture is the transformers class the model runs as
	// (config.json's "architectures", or inferred from the tensors).
	Architecture string `json:"architecture"`
	// ModelType is config.json's "model_type".
	ModelType  string `json:"model_type,omitempty"`
	VocabSize  int    `json:"vocab_size"`
	HiddenSize int    `json:"hidden_size"`
	Layers     int    `json:"layers"`
	// MaxPositions is the longest sequence the model accepts; 0 when it has
	// no position table (Llama's rotary positions have no hard limit).
	MaxPositions int `json:"max_positions,omitempty"`
	// Positions is the number of positions the model was built for
	// (max_position_embeddings, n_positions): Validate cuts its inputs to
	// it, also where Run has no hard limit.
	Positions int `json:"positions,omitempty"`
	// Outputs names the outputs Run returns, in order.
	Outputs []string `json:"outputs"`
	// WeightDType is the dtype that holds most of the matrix weights.
	WeightDType weights.DType `json:"weight_dtype"`
	// Quantized reports int8 matrix weights.
	Quantized bool `json:"quantized,omitempty"`
	// Quantization names the quantized matrices' scheme: "int8", "int4"
	// (pack-quantized W4A16), "fp8" (float-quantized), "w8a8" (int8 with
	// dynamic per-token int8 activations) or "gguf" (ggml's quantized
	// blocks, WeightDType U8); "" when none.
	Quantization string `json:"quantization,omitempty"`
	// NumLabels is the size of a classification head, 0 for none.
	NumLabels int `json:"num_labels,omitempty"`
	// PadTokenID is the pad token a decoder's sequence-classification
	// head skips (it reads the last token that is not one); nil for other
	// models and for heads without one.
	PadTokenID *int `json:"pad_token_id,omitempty"`
	// Unused lists checkpoint tensors the forward pass does not read
	// (buffers such as position_ids are not listed; heads it does not
	// compute, such as BERT's cls.*, are).
	Unused []string `json:"unused_tensors,omitempty"`
}

// Output is one output tensor of a forward pass, float32, row-major.
type Output struct {
	Name  string
	Shape []int
	Data  []float32
}

// Outputs is the result of one forward pass at batch 1.
type Outputs struct {
	// InputIDs are the ids the model ran on.
	InputIDs []int
	// Tensors are the outputs in Info.Outputs order: last_hidden_state
	// [1, seq, hidden]; pooler_output [1, hidden] (BERT with a pooler);
	// logits [1, seq, vocab] (LM heads) or [1, num_labels] (sequence
	// classification); sentence_embedding [1, dim] (sentence-transformers
	// models, see SetPooling).
	Tensors []Output
}

// Get returns the output with the given name.
func (o *Outputs) Get(name string) (*Output, bool) {
	for i := range o.Tensors {
		if o.Tensors[i].Name == name {
			return &o.Tensors[i], true
		}
	}
	return nil, false
}

// loaders build the network of each family (arch.Family.Name) the forward
// pass runs; each family's file registers its loader.
var loaders = map[string]func(s *tensorSet, cfg *arch.Config) (network, Info, error){}

// runnableTypes lists the model types of the families with a loader.
func runnableTypes() []string {
	var out []string
	for _, f := range arch.Families() {
		if _, ok := loaders[f.Name]; ok {
			out = append(out, f.ModelTypes...)
		}
	}
	return out
}

// network is one architecture's implementation.
type network interface {
	run(ctx context.Context, ids []int, rc runConfig) ([]Output, error)
}

// runConfig is how a network runs: its goroutines, what it calls before
// each layer, and, in a RunBatch, the lockstep its Linear products join.
type runConfig struct {
	threads     int
	beforeLayer func()
	batch       *lockstep
	seq         int // the sequence's index in the batch
}

// linear computes y[m×Out] = x[m×In]·Wᵀ + b: alone, or in a RunBatch as
// one product over the rows of every sequence of the batch.
func (rc runConfig) linear(y, x []float32, m int, w *kernels.Weight, b []float32) {
	if rc.batch == nil {
		linearReleasing(y, x, m, w, b, rc.threads, rc.beforeLayer)
		return
	}
	rc.batch.linear(rc.seq, y, x, m, w, b)
}

// layer is called before each layer: it checks ctx, then calls the hook.
func (rc runConfig) layer(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rc.beforeLayer != nil {
		rc.beforeLayer()
	}
	return nil
}

// Model is a loaded model ready to run. It holds views into the Graph's
// tensor data: the Graph must stay open while the Model is used. Run may be
// called from several goroutines at once.
type Model struct {
	info        Info
	threads     int
	beforeLayer func()
	net         network
	pooling     *Pooling // set by SetPooling
	// names are the tensor names of the matrices (RunCapture).
	names map[*kernels.Weight]string
}

// Load builds the model that cfg describes from the tensors of g. cfg may be
// nil, in which case g.Config is parsed. Architectures outside those families
// (see package arch) are refused with an error wrapping
// ErrUnsupported that names them.
func Load(g *weights.Graph, cfg *arch.Config, opts Options) (*Model, error) {
	if cfg == nil {
		if g.Config == nil {
			return nil, fmt.Errorf("%w: the model has no config.json", ErrUnsupported)
		}
		var err error
		if cfg, err = arch.ParseConfig(g.Config); err != nil {
			return nil, err
		}
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	s := newTensorSet(g)
	s.transientW8A8 = opts.BeforeLayer != nil
	s.ggmlQ8 = opts.GGMLQ8Activations
	m := &Model{threads: threads, beforeLayer: opts.BeforeLayer}
	var err error
	load, ok := loaders[cfg.Family()]
	if !ok {
		name := cfg.Architecture()
		if name == "" {
			name = "(config.json names no architecture or model_type)"
		}
		if cfg.ModelType != "" && cfg.ModelType != name {
			name += " (model_type " + cfg.ModelType + ")"
		}
		return nil, fmt.Errorf("%w: architecture %s; the forward pass runs the model types %s", ErrUnsupported, name, strings.Join(runnableTypes(), ", "))
	}
	if m.net, m.info, err = load(s, cfg); err != nil {
		return nil, err
	}
	m.info.ModelType = cfg.ModelType
	m.info.Positions = cfg.Params.Sizes().MaxPositions
	m.info.WeightDType = s.mainDType()
	m.info.Quantized = s.matrixElems[weights.I8] > 0 || s.quantElems["int4"] > 0 || s.quantElems["fp8"] > 0 || s.quantElems["gguf"] > 0
	switch {
	case s.quantElems["gguf"] > 0:
		m.info.Quantization = "gguf"
	case s.quantElems["int4"] > 0:
		m.info.Quantization = "int4"
	case s.quantElems["fp8"] > 0:
		m.info.Quantization = "fp8"
	case s.quantElems["w8a8"] > 0:
		m.info.Quantization = "w8a8"
	case s.matrixElems[weights.I8] > 0:
		m.info.Quantization = "int8"
	}
	m.info.Unused = s.unused()
	m.names = s.names
	return m, nil
}

// Info describes the model.
func (m *Model) Info() Info { return m.info }

// Threads is the number of goroutines Run uses.
func (m *Model) Threads() int { return m.threads }

// Run computes the outputs for one sequence of token ids (batch 1, full
// attention mask, token type 0). It checks ctx between layers.
func (m *Model) Run(ctx context.Context, ids []int) (*Outputs, error) {
	if err := m.checkIDs(ids); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.run(ctx, ids, runConfig{threads: m.threads, beforeLayer: m.beforeLayer})
}

func (m *Model) run(ctx context.Context, ids []int, rc runConfig) (*Outputs, error) {
	out, err := m.net.run(ctx, ids, rc)
	if err != nil {
		return nil, err
	}
	if out, err = m.addSentenceEmbedding(out); err != nil {
		return nil, err
	}
	return &Outputs{InputIDs: append([]int(nil), ids...), Tensors: out}, nil
}

// checkIDs refuses an input Run cannot take.
func (m *Model) checkIDs(ids []int) error {
	if len(ids) == 0 {
		return fmt.Errorf("%w: no input ids", ErrInput)
	}
	if m.info.MaxPositions > 0 && len(ids) > m.info.MaxPositions {
		return fmt.Errorf("%w: %d ids, the model takes at most %d", ErrInput, len(ids), m.info.MaxPositions)
	}
	for i, id := range ids {
		if id < 0 || id >= m.info.VocabSize {
			return fmt.Errorf("%w: id %d at position %d is outside the vocabulary [0, %d)", ErrInput, id, i, m.info.VocabSize)
		}
	}
	return nil
}

// RunBatch computes the outputs of several sequences, each as Run would
// (equal to rounding; bit for bit when every sequence has more than 4
// tokens), in lockstep: one goroutine per sequence, all through layer i
// before any starts layer i+1, and each Linear product of a layer computed
// once over the rows of all the sequences. So each layer's weights are read
// from the model's files, and packed for the product, once for the whole
// batch, and BeforeLayer is called once per layer. With BeforeLayer
// releasing the mapped pages (as validation does), Run over n sequences
// faults every weight in n times; RunBatch, once. The activations of all
// sequences are in memory at once.
func (m *Model) RunBatch(ctx context.Context, inputs [][]int) ([]*Outputs, error) {
	for i, ids := range inputs {
		if err := m.checkIDs(ids); err != nil {
			return nil, fmt.Errorf("sequence %d: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.runLockstep(ctx, inputs, newLockstep(len(inputs), m.beforeLayer, m.threads))
}

// runLockstep runs inputs in lockstep through step.
func (m *Model) runLockstep(ctx context.Context, inputs [][]int, step *lockstep) ([]*Outputs, error) {
	outs := make([]*Outputs, len(inputs))
	errs := make([]error, len(inputs))
	var wg sync.WaitGroup
	for i, ids := range inputs {
		wg.Go(func() {
			defer step.leave()
			outs[i], errs[i] = m.run(ctx, ids, runConfig{threads: m.threads, beforeLayer: step.wait, batch: step, seq: i})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("sequence %d: %w", i, err)
		}
	}
	return outs, nil
}

// lockstep synchronizes the goroutines of a RunBatch. Each sync point (the
// start of a layer, a Linear product) returns once every goroutine still
// running has arrived at it: at a layer, after the last to arrive has
// called hook; at a product, after the last to arrive has computed the
// products of all of them as one. A goroutine that ends (done, or failed)
// leaves, so that the others never wait for it. The networks run the same
// sequence of sync points for every input, so all goroutines meet at the
// same one.
type lockstep struct {
	mu      sync.Mutex
	cond    sync.Cond
	active  int // goroutines that have not left
	arrived int // of those, waiting at the sync point
	round   int
	hook    func()
	threads int
	calls   []linearCall // the products of the goroutines arrived
	x, y    []float32    // the stacked rows of a product
	stacks  int          // products computed over stacked rows

	// capture is RunCapture's hook, or nil.
	capture func(w *kernels.Weight, x []float32, rows int) *kernels.Weight
}

// linearCall is one goroutine's Linear product at a sync point.
type linearCall struct {
	seq  int
	y, x []float32
	m    int
	w    *kernels.Weight
	b    []float32
}

func newLockstep(n int, hook func(), threads int) *lockstep {
	l := &lockstep{active: n, hook: hook, threads: threads}
	l.cond.L = &l.mu
	return l
}

// wait is the sync point before a layer.
func (l *lockstep) wait() { l.arrive(nil) }

// linear is the sync point of a Linear product.
func (l *lockstep) linear(seq int, y, x []float32, m int, w *kernels.Weight, b []float32) {
	l.arrive(&linearCall{seq: seq, y: y, x: x, m: m, w: w, b: b})
}

func (l *lockstep) arrive(c *linearCall) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.arrived++
	if c != nil {
		l.calls = append(l.calls, *c)
	}
	if l.arrived == l.active {
		l.openLocked()
		return
	}
	for r := l.round; r == l.round; {
		l.cond.Wait()
	}
}

func (l *lockstep) leave() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	if l.arrived > 0 && l.arrived == l.active {
		l.openLocked()
	}
}

// openLocked does the work of the sync point every goroutine has reached,
// then lets them all go on.
func (l *lockstep) openLocked() {
	switch {
	case len(l.calls) == 0:
		if l.hook != nil {
			l.hook()
		}
	case l.capture != nil:
		l.captured()
	case len(l.calls) == l.arrived && l.sameProduct():
		l.stacked()
	default: // not one product (the networks diverged): each on its own
		for _, c := range l.calls {
			kernels.Linear(c.y, c.x, c.m, c.w, c.b, l.threads)
		}
	}
	clear(l.calls)
	l.calls = l.calls[:0]
	l.arrived = 0
	l.round++
	l.cond.Broadcast()
}

// sameProduct reports whether every call is a product with the same
// weight and bias.
func (l *lockstep) sameProduct() bool {
	c0 := l.calls[0]
	for _, c := range l.calls[1:] {
		if c.w != c0.w || len(c.b) != len(c0.b) || (len(c.b) > 0 && &c.b[0] != &c0.b[0]) {
			return false
		}
	}
	return true
}

// stacked computes the calls' products as one over their stacked rows.
func (l *lockstep) stacked() {
	if len(l.calls) == 1 {
		c := l.calls[0]
		linearReleasing(c.y, c.x, c.m, c.w, c.b, l.threads, l.hook)
		return
	}
	w, b, rows := l.gather()
	linearReleasing(l.y, l.x, rows, w, b, l.threads, l.hook)
	l.stacks++
	l.scatter(w.Out)
}

// gather stacks the calls' inputs into l.x (and sizes l.y for their
// outputs); the calls share the weight and bias it returns.
func (l *lockstep) gather() (w *kernels.Weight, b []float32, rows int) {
	w, b = l.calls[0].w, l.calls[0].b
	for _, c := range l.calls {
		rows += c.m
	}
	l.x = slices.Grow(l.x[:0], rows*w.In)[:rows*w.In]
	l.y = slices.Grow(l.y[:0], rows*w.Out)[:rows*w.Out]
	r := 0
	for _, c := range l.calls {
		copy(l.x[r*w.In:], c.x[:c.m*w.In])
		r += c.m
	}
	return w, b, rows
}

// scatter copies the stacked outputs in l.y (out per row) back to the
// calls.
func (l *lockstep) scatter(out int) {
	r := 0
	for _, c := range l.calls {
		copy(c.y[:c.m*out], l.y[r*out:])
		r += c.m
	}
}
