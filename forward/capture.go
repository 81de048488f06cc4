package forward

import (
	"context"
	"fmt"
	"slices"

	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/tokenizer"
)

// LinearHook sees the input of a Linear product before it is computed
// (RunCapture). name is the name of the weight's tensor in the Graph ("" for
// a matrix the network derived from one, such as Phi-3's split qkv_proj), w
// the model's weight, x the product's input rows [rows×w.In]. It returns
// the weight to compute the product with instead of w (same Out and In), or
// nil for w. It must not keep or change x.
type LinearHook func(name string, w *kernels.Weight, x []float32, rows int) *kernels.Weight

// RunCapture runs inputs as RunBatch does (in lockstep), calling hook once
// before each Linear product with the rows of every sequence stacked in one
// x: what a calibration (GPTQ) needs, the inputs of each layer over the
// whole calibration set, and the freedom to compute the product with a
// replaced weight so that later layers see the outputs of the replaced
// ones. The hook runs on one goroutine at a time. Run and RunBatch do not
// call it (their products cost one nil check more).
func (m *Model) RunCapture(ctx context.Context, inputs [][]int, hook LinearHook) ([]*Outputs, error) {
	for i, ids := range inputs {
		if err := m.checkIDs(ids); err != nil {
			return nil, fmt.Errorf("sequence %d: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	step := newLockstep(len(inputs), m.beforeLayer, m.threads)
	step.capture = func(w *kernels.Weight, x []float32, rows int) *kernels.Weight {
		return hook(m.names[w], w, x, rows)
	}
	return m.runLockstep(ctx, inputs, step)
}

// captured computes the products of the calls through the capture hook:
// one product over the rows stacked in the order of the sequences (the
// same x for the products of one input), when they share their weight,
// else each on its own.
func (l *lockstep) captured() {
	slices.SortFunc(l.calls, func(a, b linearCall) int { return a.seq - b.seq })
	if !l.sameProduct() {
		for _, c := range l.calls {
			w := c.w
			if r := l.capture(w, c.x[:c.m*w.In], c.m); r != nil {
				w = r
			}
			kernels.Linear(c.y, c.x, c.m, w, c.b, l.threads)
		}
		return
	}
	w, b := l.calls[0].w, l.calls[0].b
	rows := 0
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
	if nw := l.capture(w, l.x, rows); nw != nil {
		w = nw
	}
	if rows > 0 {
		kernels.Linear(l.y, l.x, rows, w, b, l.threads)
	}
	r = 0
	for _, c := range l.calls {
		copy(c.y[:c.m*w.Out], l.y[r*w.Out:])
		r += c.m
	}
}

// TextInputs encodes texts with tok as validation encodes its text inputs
// (paragraph by paragraph, the post-processor's special tokens around each
// window) and cuts them into windows of at most TextWindow ids, fewer when
// the model has fewer positions, at most budget text tokens in all: the
// calibration inputs of a quantization. Ids outside the model's vocabulary
// are an error wrapping ErrInput.
func (m *Model) TextInputs(tok *tokenizer.Tokenizer, texts []Text, budget int) ([][]int, error) {
	window := TextWindow
	for _, p := range []int{m.info.MaxPositions, m.info.Positions} {
		if p > 0 && p < window {
			window = p
		}
	}
	_, windows, err := encodeTexts(tok, texts, window, m.info.VocabSize, budget)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	out := make([][]int, len(windows))
	for i, w := range windows {
		out[i] = w.ids
	}
	return out, nil
}
