package forward

import (
	"fmt"
	"math"
	"slices"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// moeMLP is the sparse MLP of the mixture-of-experts decoders (Mixtral,
// Qwen2-MoE, Qwen3-MoE), as transformers' *SparseMoeBlock computes it: a
// router's logits, their softmax, for each token the topK experts of
// largest probability, those probabilities divided by their sum when
// normTopK, and the sum of the chosen experts' gated MLPs weighted by them.
// Each expert runs on the tokens routed to it only. Qwen2-MoE adds a shared
// expert that every token goes through, scaled by sigmoid(sharedGate(x)).
type moeMLP struct {
	hidden   int
	router   linear
	experts  []gatedMLP
	topK     int
	normTopK bool
	act      func([]float32)
	// shared is Qwen2-MoE's shared expert, nil for the others.
	shared     *gatedMLP
	sharedGate linear
}

// gatedMLP is down(act(gate(x)) · up(x)): an expert, or a shared expert.
type gatedMLP struct {
	gate, up, down linear
}

// moeNames names an MoE block's tensors relative to the layer's prefix.
type moeNames struct {
	block            string // "block_sparse_moe", "mlp"
	gate, up, down   string // an expert's projections
	shared           bool   // Qwen2-MoE's shared_expert and shared_expert_gate
	experts, topK    int
	inter, sharedInt int
	normTopK         bool
}

// loadMoE loads the MoE block of the layer with prefix p, its experts one
// Linear each or, in transformers 5's layout, fused (the block then being
// mlp for Mixtral too).
func loadMoE(s *tensorSet, p string, hidden int, nm moeNames, act func([]float32)) (*moeMLP, error) {
	m := &moeMLP{hidden: hidden, topK: nm.topK, normTopK: nm.normTopK, act: act}
	gateUp, _ := arch.FusedExperts()
	_, fused := s.lookup(p+gateUp, false)
	if fused {
		nm.block = arch.FusedMoE
	}
	var err error
	if m.router, err = loadLinear(s, p+nm.block+"."+arch.MoERouter, nm.experts, hidden, false, false); err != nil {
		return nil, err
	}
	if fused {
		if m.experts, err = loadFusedExperts(s, p, nm.experts, nm.inter, hidden); err != nil {
			return nil, err
		}
	}
	load := func(prefix string, inter int) (gatedMLP, error) {
		var g gatedMLP
		var err error
		if g.gate, err = loadLinear(s, prefix+nm.gate, inter, hidden, false, false); err != nil {
			return g, err
		}
		if g.up, err = loadLinear(s, prefix+nm.up, inter, hidden, false, false); err != nil {
			return g, err
		}
		g.down, err = loadLinear(s, prefix+nm.down, hidden, inter, false, false)
		return g, err
	}
	for e := 0; e < nm.experts && !fused; e++ {
		g, err := load(p+arch.MoEExpert(nm.block, e), nm.inter)
		if err != nil {
			return nil, err
		}
		m.experts = append(m.experts, g)
	}
	if nm.shared {
		g, err := load(p+nm.block+"."+arch.Qwen2MoESharedExpert+".", nm.sharedInt)
		if err != nil {
			return nil, err
		}
		m.shared = &g
		if m.sharedGate, err = loadLinear(s, p+nm.block+"."+arch.Qwen2MoESharedGate, 1, hidden, false, false); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// loadFusedExperts loads the experts of transformers 5's layout, the
// layer's mlp.experts.gate_up_proj [experts, 2×inter, hidden] and
// mlp.experts.down_proj [experts, hidden, inter], each expert's gate, up
// and down a view of its slice.
func loadFusedExperts(s *tensorSet, p string, experts, inter, hidden int) ([]gatedMLP, error) {
	gateUpName, downName := arch.FusedExperts()
	gateUp, err := s.stacked(p+gateUpName, experts, 2, inter, hidden)
	if err != nil {
		return nil, err
	}
	down, err := s.stacked(p+downName, experts, 1, hidden, inter)
	if err != nil {
		return nil, err
	}
	out := make([]gatedMLP, experts)
	for e := range out {
		out[e] = gatedMLP{gate: linear{w: gateUp[2*e]}, up: linear{w: gateUp[2*e+1]}, down: linear{w: down[e]}}
	}
	return out, nil
}

// stacked returns the 3-D float tensor name (absolute: false) of shape
// [n, parts×out, in] as the n×parts Linear weights out×in of its slices,
// in storage order, viewed in place (F32, F16, BF16; F64 widened to an f32
// copy). Other dtypes are refused: quantized experts are stored per expert
// (compressed-tensors), and no scale layout of fused F8 experts is known.
func (s *tensorSet) stacked(name string, n, parts, out, in int) ([]*kernels.Weight, error) {
	t, ok := s.lookup(name, false)
	if !ok {
		return nil, fmt.Errorf("%w: missing tensor %s", ErrWeights, quote(s.fullName(name, false)))
	}
	want := []int64{int64(n), int64(parts * out), int64(in)}
	if !slices.Equal(t.Shape, want) {
		return nil, fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrWeights, quote(t.Name), t.Shape, want)
	}
	var data []byte
	d := t.DType
	switch d {
	case weights.F32, weights.F16, weights.BF16:
		b, err := t.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWeights, err)
		}
		data = b
	case weights.F64:
		v, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWeights, err)
		}
		d, data = weights.F32, make([]byte, 4*len(v))
		if err := weights.EncodeFloat32(data, v, weights.F32); err != nil {
			return nil, fmt.Errorf("%w: tensor %s: %v", ErrWeights, quote(t.Name), err)
		}
	default:
		return nil, fmt.Errorf("%w: tensor %s has dtype %v; fused experts are read in float only", ErrUnsupported, quote(t.Name), t.DType)
	}
	size := out * in * d.Size()
	if len(data) != n*parts*size {
		return nil, fmt.Errorf("%w: tensor %s holds %d bytes, want %d", ErrWeights, quote(t.Name), len(data), n*parts*size)
	}
	ws := make([]*kernels.Weight, n*parts)
	for k := range ws {
		ws[k] = &kernels.Weight{Out: out, In: in, DType: d, Data: data[k*size : (k+1)*size]}
		if err := ws[k].Validate(); err != nil {
			return nil, fmt.Errorf("%w: tensor %s: %v", ErrWeights, quote(t.Name), err)
		}
	}
	s.used[t.Name] = true
	s.matrixElems[d] += int64(n) * int64(parts*out) * int64(in)
	return ws, nil
}

// loadAttention loads the attention projections (q, k, v, o) of the layer
// with prefix p (alone for a decoder layer whose MLP is an MoE block).
func loadAttention(s *tensorSet, p string, hidden, heads, kvHeads, headDim int) (projections, error) {
	var l projections
	for _, x := range []struct {
		dst     *linear
		name    string
		out, in int
	}{
		{&l.q, arch.LlamaQuery, heads * headDim, hidden}, {&l.k, arch.LlamaKey, kvHeads * headDim, hidden},
		{&l.v, arch.LlamaValue, kvHeads * headDim, hidden}, {&l.o, arch.LlamaAttentionOutput, hidden, heads * headDim},
	} {
		var err error
		if *x.dst, err = loadLinear(s, p+x.name, x.out, x.in, false, false); err != nil {
			return projections{}, err
		}
	}
	return l, nil
}

// apply computes dst[n×Out] = g(x[n×In]); gate and up are scratch of at
// least n×intermediate.
func (g *gatedMLP) apply(dst, x, gate, up []float32, n int, act func([]float32), rc runConfig) {
	inter := g.gate.w.Out
	gate, up = gate[:n*inter], up[:n*inter]
	g.gate.apply(gate, x, n, rc)
	g.up.apply(up, x, n, rc)
	parallelRows(n, inter, rc.threads, func(lo, hi int) {
		g, u := gate[lo*inter:hi*inter], up[lo*inter:hi*inter]
		act(g)
		for i := range g {
			g[i] *= u[i]
		}
	})
	g.down.apply(dst, gate, n, rc)
}

// route returns, for each of the n tokens, the experts it goes to and
// their weights: the topK largest probabilities of the softmax of its
// router logits (ties to the lower expert), divided by their sum when
// normTopK.
func (m *moeMLP) route(logits []float32, n int) (experts []int, weights []float32) {
	E, k := len(m.experts), m.topK
	experts = make([]int, n*k)
	weights = make([]float32, n*k)
	for t := 0; t < n; t++ {
		p := logits[t*E : (t+1)*E]
		kernels.Softmax(p)
		var sum float32
		for j := 0; j < k; j++ {
			best := -1
			for e, v := range p {
				if v >= 0 && (best < 0 || v > p[best]) { // chosen experts are marked -1
					best = e
				}
			}
			experts[t*k+j], weights[t*k+j] = best, p[best]
			sum += p[best]
			p[best] = -1
		}
		if m.normTopK {
			for j := 0; j < k; j++ {
				weights[t*k+j] /= sum
			}
		}
	}
	return experts, weights
}

// run computes dst[n×hidden] = the block's output for a[n×hidden] (dst may
// be a). In a RunBatch every expert's products are sync points, also for an
// expert no token of the sequence goes to, so that all the sequences meet
// at the same ones.
func (m *moeMLP) run(dst, a []float32, n int, rc runConfig) {
	H, E, k := m.hidden, len(m.experts), m.topK
	logits := make([]float32, n*E)
	m.router.apply(logits, a, n, rc)
	experts, weights := m.route(logits, n)
	tokens := make([][]int, E) // per expert, its tokens and their weights
	tw := make([][]float32, E)
	for t := 0; t < n; t++ {
		for j := 0; j < k; j++ {
			e := experts[t*k+j]
			tokens[e] = append(tokens[e], t)
			tw[e] = append(tw[e], weights[t*k+j])
		}
	}
	inter := 0
	for _, g := range m.experts {
		inter = max(inter, g.gate.w.Out)
	}
	if m.shared != nil {
		inter = max(inter, m.shared.gate.w.Out)
	}
	out := make([]float32, n*H)
	x := make([]float32, n*H)
	y := make([]float32, n*H)
	gate := make([]float32, n*inter)
	up := make([]float32, n*inter)
	for e := range m.experts {
		rows := tokens[e]
		if len(rows) == 0 && rc.batch == nil {
			continue
		}
		for i, t := range rows {
			copy(x[i*H:(i+1)*H], a[t*H:(t+1)*H])
		}
		m.experts[e].apply(y, x, gate, up, len(rows), m.act, rc)
		for i, t := range rows {
			o, w := out[t*H:(t+1)*H], tw[e][i]
			for c, v := range y[i*H : (i+1)*H] {
				o[c] += v * w
			}
		}
	}
	if m.shared != nil {
		m.shared.apply(y, a, gate, up, n, m.act, rc)
		g := make([]float32, n)
		m.sharedGate.apply(g, a, n, rc)
		for t := 0; t < n; t++ {
			s := float32(1 / (1 + math.Exp(-float64(g[t]))))
			o := out[t*H : (t+1)*H]
			for c, v := range y[t*H : (t+1)*H] {
				o[c] += s * v
			}
		}
	}
	copy(dst[:n*H], out)
}

// moeSpec returns the decoderSpec.moe of an MoE family: the MoE block of
// the layers sparse names, from nm.
func moeSpec(sparse []bool, hidden int, nm moeNames) func(s *tensorSet, i int, p string, act func([]float32)) (*moeMLP, error) {
	return func(s *tensorSet, i int, p string, act func([]float32)) (*moeMLP, error) {
		if !sparse[i] {
			return nil, nil
		}
		return loadMoE(s, p, hidden, nm, act)
	}
}

// moeClass is the class an MoE config without "architectures" runs as.
func moeClass(cfg *arch.Config, class string) string {
	if len(cfg.Architectures) == 0 {
		return class
	}
	return cfg.Architecture()
}

// noSlidingWindow refuses Qwen's use_sliding_window, which no released
// MoE model sets.
func noSlidingWindow(use bool, class string) error {
	if use {
		return fmt.Errorf("%w: %s with use_sliding_window", ErrUnsupported, class)
	}
	return nil
}
