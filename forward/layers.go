package forward

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// linear is a Linear (or Conv1D) layer: a weight viewed in place and an
// optional f32 bias.
type linear struct {
	w *kernels.Weight
	b []float32
}

// apply computes y[m×Out] = x[m×In]·Wᵀ + b.
func (l *linear) apply(y, x []float32, m int, rc runConfig) {
	rc.linear(y[:m*l.w.Out], x[:m*l.w.In], m, l.w, l.b)
}

// loadLinear reads "<name>.weight" (out×in) and, when present or required,
// "<name>.bias" [out].
func loadLinear(s *tensorSet, name string, out, in int, conv1d, needBias bool) (linear, error) {
	w, err := s.matrix(name, out, in, conv1d, false)
	if err != nil {
		return linear{}, err
	}
	var b []float32
	if needBias {
		b, err = s.vector(name+".bias", out, false)
	} else {
		b, err = s.optVector(name+".bias", out, false)
	}
	if err != nil {
		return linear{}, err
	}
	return linear{w: w, b: b}, nil
}

// lmHead returns the weight of a causal LM's head, whose weight is named
// name (absolute: "lm_head.weight"). As in transformers, a tied head is the
// token embedding (the head's weight in the file, usually sharing its
// storage, is ignored) and an untied one is the head's weight.
func lmHead(s *tensorSet, name string, tied bool, embedding *kernels.Weight, vocab, hidden int, class string) (*kernels.Weight, error) {
	if tied {
		s.markUsed(func(n string) bool { return n == name })
		return embedding, nil
	}
	if !s.has(name, true) {
		return nil, fmt.Errorf("%w: %s with tie_word_embeddings false has no %q", ErrWeights, class, name)
	}
	return s.matrix(strings.TrimSuffix(name, ".weight"), vocab, hidden, false, true)
}

// norm is a LayerNorm (weight and bias) or RMSNorm (weight only).
type norm struct {
	w, b []float32
	eps  float32
}

func loadNorm(s *tensorSet, name string, n int, withBias bool, eps float64) (norm, error) {
	w, err := s.vector(name+".weight", n, false)
	if err != nil {
		return norm{}, err
	}
	var b []float32
	if withBias {
		if b, err = s.vector(name+".bias", n, false); err != nil {
			return norm{}, err
		}
	}
	return norm{w: w, b: b, eps: float32(eps)}, nil
}

// layerNorm normalizes each of the rows of x (row length len(n.w)) into dst.
func (n *norm) layerNorm(dst, x []float32, rows int) {
	d := len(n.w)
	for r := 0; r < rows; r++ {
		kernels.LayerNorm(dst[r*d:(r+1)*d], x[r*d:(r+1)*d], n.w, n.b, n.eps)
	}
}

// rmsNorm is layerNorm for RMSNorm.
func (n *norm) rmsNorm(dst, x []float32, rows int) {
	d := len(n.w)
	for r := 0; r < rows; r++ {
		kernels.RMSNorm(dst[r*d:(r+1)*d], x[r*d:(r+1)*d], n.w, n.eps)
	}
}

// activation returns the in-place function of a transformers activation name
// (ACT2FN).
func activation(name string) (func([]float32), error) {
	switch name {
	case "gelu", "gelu_python":
		return kernels.GELU, nil
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		return kernels.GELUTanh, nil
	case "silu", "swish":
		return kernels.SiLU, nil
	case "relu":
		return relu, nil
	case "quick_gelu":
		return quickGELU, nil
	case "tanh":
		return tanh, nil
	}
	return nil, fmt.Errorf("%w: activation %q", ErrUnsupported, name)
}

// relu computes x[i] = max(x[i], 0).
func relu(x []float32) {
	for i, v := range x {
		if v < 0 {
			x[i] = 0
		}
	}
}

// quickGELU computes x[i] = x[i]·sigmoid(1.702·x[i]), transformers' QuickGELU.
func quickGELU(x []float32) {
	for i, v := range x {
		x[i] = v / (1 + float32(math.Exp(-1.702*float64(v))))
	}
}

// tanh computes x[i] = tanh(x[i]).
func tanh(x []float32) {
	for i, v := range x {
		x[i] = float32(math.Tanh(float64(v)))
	}
}

// add computes dst[i] += x[i].
func add(dst, x []float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += x[i]
	}
}

// embed writes rows ids of table into dst[len(ids)×dim].
func embed(dst []float32, table *kernels.Weight, ids []int) {
	d := table.In
	for t, id := range ids {
		kernels.Embedding(dst[t*d:(t+1)*d], table, id)
	}
}

// addRows adds to each row t < n of x row t of table (absolute position
// embeddings) or, when row >= 0, row row of table (a token type).
func addRows(x []float32, table *kernels.Weight, n, row int) {
	d := table.In
	buf := make([]float32, d)
	for t := 0; t < n; t++ {
		r := row
		if r < 0 {
			r = t
		}
		kernels.Embedding(buf, table, r)
		add(x[t*d:(t+1)*d], buf)
	}
}

// attention is multi-head scaled dot-product attention at batch 1, with
// grouped key/value heads (GQA; kvHeads == heads for MHA), an optional
// causal mask and an optional sliding window.
type attention struct {
	heads, kvHeads, headDim int
	// scale multiplies the scores q·k.
	scale float32
	// causal restricts query i to keys j ≤ i.
	causal bool
	// softcap, when above 0, caps the scaled scores s to
	// softcap·tanh(s/softcap) (Gemma 2's attn_logit_softcapping).
	softcap float32
	// posBias, when set, is added to the scaled scores: [heads×seq×seq],
	// head h's row i at (h*seq+i)*seq (MPNet's relative position bias).
	posBias []float32
	// reach, when above 0, limits query i to keys j with |i-j| < reach
	// (ModernBERT's local layers, which look both ways).
	reach int
}

// span is the matrix of one projection inside a row-major buffer: row t of
// head h starts at off + t*ld + h*headDim.
type span struct {
	buf     []float32
	ld, off int
}

// run computes ctx[seq×heads·headDim] = softmax(q·kᵀ·scale + mask)·v per head,
// where query head h reads key/value head h/(heads/kvHeads). window > 0 limits
// query i to keys j > i-window (Mistral's sliding window). The heads are
// spread over up to threads goroutines.
func (a *attention) run(ctx []float32, q, k, v span, seq, window, threads int) {
	if threads > a.heads {
		threads = a.heads
	}
	if threads < 1 {
		threads = 1
	}
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			dh := a.headDim
			qh := make([]float32, seq*dh)
			kh := make([]float32, seq*dh)
			vh := make([]float32, seq*dh)
			ch := make([]float32, seq*dh)
			scores := make([]float32, seq*seq)
			group := a.heads / a.kvHeads
			lastKV := -1
			for h := t; h < a.heads; h += threads {
				gather(qh, q, seq, h*dh, dh)
				if kv := h / group; kv != lastKV {
					gather(kh, k, seq, kv*dh, dh)
					gather(vh, v, seq, kv*dh, dh)
					lastKV = kv
				}
				kernels.MatMul(scores, qh, kh, seq, seq, dh, true, 1)
				for i := 0; i < seq; i++ {
					row := scores[i*seq : (i+1)*seq]
					lo, hi := 0, seq
					if a.causal {
						hi = i + 1
					}
					if window > 0 && i-window+1 > lo {
						lo = i - window + 1
					}
					if a.reach > 0 {
						lo = max(lo, i-a.reach+1)
						hi = min(hi, i+a.reach)
					}
					for j := lo; j < hi; j++ {
						row[j] *= a.scale
					}
					if a.posBias != nil {
						b := a.posBias[(h*seq+i)*seq : (h*seq+i+1)*seq]
						for j := lo; j < hi; j++ {
							row[j] += b[j]
						}
					}
					if a.softcap > 0 {
						softcap(row[lo:hi], a.softcap)
					}
					kernels.Softmax(row[lo:hi])
					clear(row[:lo])
					clear(row[hi:])
				}
				kernels.MatMul(ch, scores, vh, seq, dh, seq, false, 1)
				scatter(ctx, ch, seq, a.heads*dh, h*dh, dh)
			}
		}(t)
	}
	wg.Wait()
}

// softcap computes x[i] = c·tanh(x[i]/c), as Gemma 2 caps attention scores
// and logits.
func softcap(x []float32, c float32) {
	for i, v := range x {
		x[i] = c * float32(math.Tanh(float64(v/c)))
	}
}

// gather copies columns [col, col+dh) of the seq rows of s into dst[seq×dh].
func gather(dst []float32, s span, seq, col, dh int) {
	for t := 0; t < seq; t++ {
		o := s.off + t*s.ld + col
		copy(dst[t*dh:(t+1)*dh], s.buf[o:o+dh])
	}
}

// scatter copies src[seq×dh] into columns [col, col+dh) of dst (row length ld).
func scatter(dst, src []float32, seq, ld, col, dh int) {
	for t := 0; t < seq; t++ {
		copy(dst[t*ld+col:t*ld+col+dh], src[t*dh:(t+1)*dh])
	}
}

// rowMajor returns a span over a [seq×width] buffer.
func rowMajor(buf []float32, width int) span { return span{buf: buf, ld: width} }

// layerHeads returns the number of attention heads of each layer: heads,
// less the ones config.json's pruned_heads removed (BERT and GPT-2, as
// transformers' prune_heads leaves them).
func layerHeads(cfg *arch.Config, heads, layers int) ([]int, error) {
	pruned, err := cfg.PrunedHeads()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	out := make([]int, layers)
	for l := range out {
		out[l] = heads
	}
	for l, hs := range pruned {
		if l >= layers {
			return nil, fmt.Errorf("%w: pruned_heads names layer %d of %d", ErrWeights, l, layers)
		}
		for _, h := range hs {
			if h >= heads {
				return nil, fmt.Errorf("%w: pruned_heads names head %d of layer %d, which has %d", ErrWeights, h, l, heads)
			}
		}
		out[l] = heads - len(hs)
		if out[l] < 1 {
			return nil, fmt.Errorf("%w: pruned_heads removes every head of layer %d", ErrWeights, l)
		}
	}
	return out, nil
}
