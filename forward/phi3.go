package forward

import (
	"math"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// Phi3ForCausalLM and Phi3Model (Phi-3, Phi-3.5-mini, Phi-4-mini) are
// Llama's decoder with q, k and v in one qkv_proj and the MLP's gate and
// up in one gate_up_proj (used here as row views of the fused weights: no
// copy), a rotary embedding over the first partial_rotary_factor of each
// head, LongRoPE scaling (short factors up to original_max_position_embeddings
// positions, long ones for every position of a longer sequence, cos and
// sin times the attention factor) and sliding_window on every layer when
// set.
func init() { loaders["phi3"] = loadPhi3 }

func loadPhi3(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.Phi3()
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		class = "Phi3ForCausalLM"
	}
	rope := func() ([]float32, *longFreq, error) {
		if c.LongRoPE == nil {
			return kernels.RoPEInvFreq(c.RotaryDim, c.RopeTheta), nil, nil
		}
		l := c.LongRoPE
		return longRoPEFrequencies(c.RotaryDim, c.RopeTheta, l.ShortFactor),
			&longFreq{invFreq: longRoPEFrequencies(c.RotaryDim, c.RopeTheta, l.LongFactor), from: l.Original,
				scale: float32(l.AttentionFactor)}, nil
	}
	return loadDecoder(s, cfg, class, decoderSpec{family: "phi3", windows: c.Windows, fused: true, rope: rope})
}

// longRoPEFrequencies are transformers' LongRoPE inverse frequencies
// 1/(factor[i]·theta^(2i/dim)), computed in f32 as it computes them.
func longRoPEFrequencies(dim int, theta float64, factors []float64) []float32 {
	out := make([]float32, dim/2)
	for i := range out {
		base := float32(math.Pow(float64(float32(theta)), float64(float32(2*i)/float32(dim))))
		out[i] = 1 / (float32(factors[i]) * base)
	}
	return out
}

// loadFusedProjections loads Phi-3's projections of the layer with prefix
// p: qkv_proj's rows are q's, k's and v's, gate_up_proj's gate's and up's.
func loadFusedProjections(s *tensorSet, p string, hidden, inter, heads, kvHeads, headDim int) (projections, error) {
	qw, kvw := heads*headDim, kvHeads*headDim
	qkv, err := loadLinear(s, p+arch.Phi3QKV, qw+2*kvw, hidden, false, false)
	if err != nil {
		return projections{}, err
	}
	gateUp, err := loadLinear(s, p+arch.Phi3GateUp, 2*inter, hidden, false, false)
	if err != nil {
		return projections{}, err
	}
	var l projections
	l.q, l.k, l.v = linearRows(qkv, 0, qw), linearRows(qkv, qw, qw+kvw), linearRows(qkv, qw+kvw, qw+2*kvw)
	l.gate, l.up = linearRows(gateUp, 0, inter), linearRows(gateUp, inter, 2*inter)
	if l.o, err = loadLinear(s, p+arch.LlamaAttentionOutput, hidden, qw, false, false); err != nil {
		return projections{}, err
	}
	if l.down, err = loadLinear(s, p+arch.LlamaDown, hidden, inter, false, false); err != nil {
		return projections{}, err
	}
	return l, nil
}

// linearRows is the Linear of output rows [lo, hi) of l, viewing its
// weight's bytes (and int8 scales) in place.
func linearRows(l linear, lo, hi int) linear {
	w := l.w
	if w.InMajor {
		panic("forward: linearRows of an [in, out] weight")
	}
	if w.Int4 != nil {
		q := w.Int4.Rows(lo, hi)
		out := linear{w: &kernels.Weight{Out: hi - lo, In: w.In, DType: w.DType, Data: q.Packed, Int4: q}}
		if l.b != nil {
			out.b = l.b[lo:hi:hi]
		}
		return out
	}
	if w.GGML != nil {
		q := w.GGML.Rows(lo, hi)
		out := linear{w: &kernels.Weight{Out: hi - lo, In: w.In, DType: w.DType, Data: q.Data, GGML: q}}
		if l.b != nil {
			out.b = l.b[lo:hi:hi]
		}
		return out
	}
	row := w.In * w.DType.Size()
	r := &kernels.Weight{Out: hi - lo, In: w.In, DType: w.DType, Data: w.Data[lo*row : hi*row : hi*row], GroupSize: w.GroupSize}
	if w.Scales != nil {
		g := len(w.Scales) / w.Out
		r.Scales = w.Scales[lo*g : hi*g : hi*g]
	}
	out := linear{w: r}
	if l.b != nil {
		out.b = l.b[lo:hi:hi]
	}
	return out
}
