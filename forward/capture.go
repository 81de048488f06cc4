package forward

import (
	"context"
	"fmt"
	"slices"

	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/tokenizer"
)

// LinearHook sees the input of a Linear product before it is computed
// (RunCapture). name is the name of the weight's tensor in the Graph, and
// first the first output row of that tensor the product computes: 0, or
// where the rows of a fused tensor the network splits start (Phi-3's
// qkv_proj and gate_up_proj); name is "" for a matrix not found among the
// tensors. w is the product's weight, x its input rows [rows×w.In]. The
// hook returns the weight to compute the product with instead of w (same
// Out and In; one of another shape is not used), or nil for w. It must
// not keep or change x.
type LinearHook func(name string, first int, w *kernels.Weight, x []float32, rows int) *kernels.Weight

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
	found := map[*kernels.Weight]rowSlice{}
	step.capture = func(w *kernels.Weight, x []float32, rows int) *kernels.Weight {
		if name, ok := m.names[w]; ok {
			return hook(name, 0, w, x, rows)
		}
		r, ok := found[w]
		if !ok {
			r = m.rowSliceOf(w)
			found[w] = r
		}
		return hook(r.name, r.first, w, x, rows)
	}
	return m.runLockstep(ctx, inputs, step)
}

// rowSlice locates a matrix inside a tensor's rows.
type rowSlice struct {
	name  string
	first int
}

// rowSliceOf finds the tensor whose rows w views (a float matrix the
// network cut out of a fused one); "" when there is none.
func (m *Model) rowSliceOf(w *kernels.Weight) rowSlice {
	if w.Int4 != nil || w.InMajor || len(w.Data) == 0 {
		return rowSlice{}
	}
	row := w.In * w.DType.Size()
	for p, name := range m.names {
		if p.DType != w.DType || p.InMajor || p.In != w.In || p.Out < w.Out || len(p.Data) != p.Out*row {
			continue
		}
		for k := 0; k+w.Out <= p.Out; k++ {
			if &p.Data[k*row] == &w.Data[0] {
				return rowSlice{name, k}
			}
		}
	}
	return rowSlice{}
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
			if r := l.capture(w, c.x[:c.m*w.In], c.m); r != nil && r.Out == w.Out && r.In == w.In {
				w = r
			}
			kernels.Linear(c.y, c.x, c.m, w, c.b, l.threads)
		}
		return
	}
	w, b, rows := l.gather()
	if nw := l.capture(w, l.x, rows); nw != nil && nw.Out == w.Out && nw.In == w.In {
		w = nw
	}
	if rows > 0 {
		kernels.Linear(l.y, l.x, rows, w, b, l.threads)
	}
	l.scatter(w.Out)
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
