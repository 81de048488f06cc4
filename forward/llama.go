package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// llama is transformers' LlamaForCausalLM: pre-RMSNorm decoder with rotary
// positions, grouped-query attention and a gated MLP. Biases on the
// projections are used when the checkpoint has them (Qwen2's q/k/v biases,
// attention_bias, mlp_bias); Mistral's and Qwen2's sliding windows apply per
// layer as their configs say. Qwen3 (qwen3.go) runs these layers with its
// q and k norms, Phi-3 (phi3.go) with its fused projections split, partial
// rotary embeddings and LongRoPE.
type llama struct {
	hidden, heads, kvHeads, headDim, inter int
	embed                                  *kernels.Weight
	layers                                 []llamaLayer
	norm                                   norm
	act                                    func([]float32)
	// invFreq are the rotary inverse frequencies; fewer than headDim/2
	// turn only the first 2·len(invFreq) dimensions of each head (Phi-3's
	// partial_rotary_factor).
	invFreq []float32
	// long, when set, replaces invFreq for longer sequences and scales cos
	// and sin (Phi-3's LongRoPE).
	long    *longFreq
	lmHead  *kernels.Weight // nil for the base model
	score   *seqClassifier  // *ForSequenceClassification's head
	scratch scratchPool     // activation buffers reused between runs
}

// longFreq is LongRoPE's second set of frequencies: invFreq (from the long
// factors) is used for a sequence longer than from positions, llama.invFreq
// (from the short factors) otherwise, both with cos and sin times scale.
type longFreq struct {
	invFreq []float32
	from    int
	scale   float32
}

// ropeTable returns the rotary table of a run of n positions.
func (m *llama) ropeTable(n int) *kernels.RoPETable {
	if m.long == nil {
		return kernels.NewRoPETable(m.invFreq, n)
	}
	inv := m.invFreq
	if n > m.long.from {
		inv = m.long.invFreq
	}
	return kernels.NewScaledRoPETable(inv, n, m.long.scale)
}

type llamaLayer struct {
	inNorm, postNorm norm
	// qNorm and kNorm are Qwen3's RMSNorms over each head of q and k,
	// applied before the rotary embedding; empty for Llama.
	qNorm, kNorm norm
	projections
	window int // sliding window, 0 for full attention
	// moe is the MoE block of a layer of an MoE family (moe.go), which has
	// no gate, up and down projections then; nil for a dense layer.
	moe *moeMLP
}

// projections are the Linear layers of every Llama-style decoder layer
// (Llama, Qwen3, Gemma): attention's q, k, v and o, the MLP's gate, up and
// down.
type projections struct {
	q, k, v, o linear
	gatedMLP   // gate, up, down
}

// loadProjections loads the attention projections and the gated MLP of the
// layer with prefix p.
func loadProjections(s *tensorSet, p string, hidden, inter, heads, kvHeads, headDim int) (projections, error) {
	l, err := loadAttention(s, p, hidden, heads, kvHeads, headDim)
	if err != nil {
		return projections{}, err
	}
	for _, x := range []struct {
		dst     *linear
		name    string
		out, in int
	}{
		{&l.gate, arch.LlamaGate, inter, hidden}, {&l.up, arch.LlamaUp, inter, hidden}, {&l.down, arch.LlamaDown, hidden, inter},
	} {
		if *x.dst, err = loadLinear(s, p+x.name, x.out, x.in, false, false); err != nil {
			return projections{}, err
		}
	}
	return l, nil
}

// mlp computes dst = down(act(gate(a)) · up(a)) for n rows, with gate and
// up as scratch [n×intermediate].
func (l *projections) mlp(dst, a, gate, up []float32, n int, act func([]float32), rc runConfig) {
	l.gatedMLP.apply(dst, a, gate, up, n, act, rc)
}

// rotateRange applies the rotary embedding to each head of rows [lo, hi)
// of q [n×heads·headDim] and k [n×kvHeads·headDim], row t at position t.
func rotateRange(rope *kernels.RoPETable, q, k []float32, lo, hi, heads, kvHeads, headDim int) {
	qw, kvw := heads*headDim, kvHeads*headDim
	for t := lo; t < hi; t++ {
		for h := 0; h < heads; h++ {
			rope.Apply(q[t*qw+h*headDim:t*qw+(h+1)*headDim], t)
		}
		for h := 0; h < kvHeads; h++ {
			rope.Apply(k[t*kvw+h*headDim:t*kvw+(h+1)*headDim], t)
		}
	}
}

func init() { loaders["llama"] = loadLlama }

func loadLlama(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		switch cfg.ModelType {
		case "mistral":
			class = "MistralForCausalLM"
		case "qwen2":
			class = "Qwen2ForCausalLM"
		default:
			class = "LlamaForCausalLM"
		}
	}
	windows, err := slidingWindows(cfg)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	return loadDecoder(s, cfg, class, decoderSpec{family: "llama", windows: windows})
}

// decoderSpec is what a family built on the Llama layers (Qwen3, Phi-3)
// adds to them.
type decoderSpec struct {
	family string
	// windows is each layer's sliding window (0: full attention).
	windows []int
	// qkNorm: the layers have q_norm and k_norm (Qwen3).
	qkNorm bool
	// moe, when set, loads layer i's MoE block (prefix p), nil for a dense
	// layer (the MoE families).
	moe func(s *tensorSet, i int, p string, act func([]float32)) (*moeMLP, error)
	// fused: q, k and v are one qkv_proj, gate and up one gate_up_proj
	// (Phi-3).
	fused bool
	// rope, when set, gives the rotary frequencies in place of
	// ropeFrequencies (Phi-3).
	rope func() (invFreq []float32, long *longFreq, err error)
}

// loadDecoder loads a Llama-family decoder (the config's Llama fields; see
// rotaryConfig) running as class.
func loadDecoder(s *tensorSet, cfg *arch.Config, class string, spec decoderSpec) (network, Info, error) {
	c := rotaryConfig(cfg)
	if !cfg.OfFamily(class) {
		return nil, Info{}, fmt.Errorf("%w: architecture %s with model_type %s", ErrUnsupported, class, cfg.ModelType)
	}
	if err := s.detectPrefix(c.Layout()); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	act, err := activation(c.HiddenAct)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	if c.HeadDim%2 != 0 {
		return nil, Info{}, fmt.Errorf("%w: %s: head_dim %d is odd; rotary embeddings need an even one", ErrUnsupported, class, c.HeadDim)
	}
	var invFreq []float32
	var long *longFreq
	maxPositions := 0
	if spec.rope != nil {
		invFreq, long, err = spec.rope()
	} else {
		if err := unsupportedRaw(cfg, "partial_rotary_factor", 1.0); err != nil {
			return nil, Info{}, fmt.Errorf("%s: %w", class, err)
		}
		invFreq, maxPositions, err = ropeFrequencies(cfg)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	H, I, dh := c.HiddenSize, c.IntermediateSize, c.HeadDim
	nh, nkv := c.NumAttentionHeads, c.NumKeyValueHeads
	m := &llama{hidden: H, heads: nh, kvHeads: nkv, headDim: dh, inter: I, act: act, invFreq: invFreq, long: long}
	if m.embed, err = s.embedding(arch.LlamaEmbeddings, c.VocabSize, H); err != nil {
		return nil, Info{}, err
	}
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := arch.LlamaLayer(i)
		l := llamaLayer{window: spec.windows[i]}
		if l.inNorm, err = loadNorm(s, p+arch.LlamaInputNorm, H, false, c.RMSNormEps); err != nil {
			return nil, Info{}, err
		}
		if l.postNorm, err = loadNorm(s, p+arch.LlamaPostAttentionNorm, H, false, c.RMSNormEps); err != nil {
			return nil, Info{}, err
		}
		if spec.qkNorm {
			if l.qNorm, err = loadNorm(s, p+arch.Qwen3QNorm, dh, false, c.RMSNormEps); err != nil {
				return nil, Info{}, err
			}
			if l.kNorm, err = loadNorm(s, p+arch.Qwen3KNorm, dh, false, c.RMSNormEps); err != nil {
				return nil, Info{}, err
			}
		}
		if spec.moe != nil {
			if l.moe, err = spec.moe(s, i, p, act); err != nil {
				return nil, Info{}, err
			}
		}
		switch {
		case l.moe != nil:
			l.projections, err = loadAttention(s, p, H, nh, nkv, dh)
		case spec.fused:
			l.projections, err = loadFusedProjections(s, p, H, I, nh, nkv, dh)
		default:
			l.projections, err = loadProjections(s, p, H, I, nh, nkv, dh)
		}
		if err != nil {
			return nil, Info{}, err
		}
		m.layers = append(m.layers, l)
	}
	if m.norm, err = loadNorm(s, arch.LlamaFinalNorm, H, false, c.RMSNormEps); err != nil {
		return nil, Info{}, err
	}
	info := Info{Family: spec.family, Architecture: class, VocabSize: c.VocabSize, HiddenSize: H, Layers: c.NumHiddenLayers,
		MaxPositions: maxPositions, Outputs: []string{OutputLastHiddenState}}
	if strings.HasSuffix(class, "ForCausalLM") {
		if m.lmHead, err = lmHead(s, c.Layout().LMHead, c.TieWordEmbeddings, m.embed, c.VocabSize, H, class); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
	}
	if sequenceClassification(class) {
		if m.score, info.NumLabels, err = loadSeqClassifier(s, cfg, class, H); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
		info.PadTokenID = m.score.padInfo()
	}
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

// rotaryConfig returns the Llama fields of a config of the Llama family or
// of a family built on its config (Qwen3, Gemma, Phi-3).
func rotaryConfig(cfg *arch.Config) *arch.LlamaConfig {
	if q := cfg.Qwen3(); q != nil {
		return &q.LlamaConfig
	}
	if p := cfg.Phi3(); p != nil {
		return &p.LlamaConfig
	}
	if g := cfg.Gemma(); g != nil {
		return &g.LlamaConfig
	}
	if d, ok := cfg.Params.(interface{ Decoder() *arch.LlamaConfig }); ok { // the MoE families
		return d.Decoder()
	}
	return nil
}

// unsupportedRaw refuses a numeric config field that is present with a value
// other than neutral.
func unsupportedRaw(cfg *arch.Config, field string, neutral float64) error {
	raw, ok := cfg.Raw[field]
	if !ok || string(raw) == "null" {
		return nil
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("%w: %s: %v", arch.ErrConfig, field, err)
	}
	if v != neutral {
		return fmt.Errorf("%w: %s %v", ErrUnsupported, field, v)
	}
	return nil
}

// ropeFrequencies returns the rotary inverse frequencies: HF's default ones
// (1/theta^(2i/head_dim)), adjusted by config.json's rope_scaling for the
// "linear" and "llama3" types. "dynamic" (NTK) scaling changes nothing up to
// max_position_embeddings, which then becomes the longest input accepted
// (maxPositions; 0 means no limit). Other scaling types are refused.
func ropeFrequencies(cfg *arch.Config) (invFreq []float32, maxPositions int, err error) {
	c := rotaryConfig(cfg)
	inv := kernels.RoPEInvFreq(c.HeadDim, c.RopeTheta)
	raw, ok := cfg.Raw["rope_scaling"]
	if !ok || string(raw) == "null" {
		// transformers 5 writes the scaling in rope_parameters (Gemma 3's
		// global layers': its full_attention entry).
		rp, err := arch.RopeParameters(cfg)
		if err != nil {
			return nil, 0, err
		}
		if v, ok := rp["full_attention"]; ok {
			raw = v
		} else if rp != nil {
			raw = cfg.Raw["rope_parameters"]
		} else {
			return inv, 0, nil
		}
	}
	var rs struct {
		RopeType                      string  `json:"rope_type"`
		Type                          string  `json:"type"`
		Factor                        float64 `json:"factor"`
		LowFreqFactor                 float64 `json:"low_freq_factor"`
		HighFreqFactor                float64 `json:"high_freq_factor"`
		OriginalMaxPositionEmbeddings float64 `json:"original_max_position_embeddings"`
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, 0, fmt.Errorf("%w: rope_scaling: %v", arch.ErrConfig, err)
	}
	kind := rs.RopeType
	if kind == "" {
		kind = rs.Type
	}
	switch kind {
	case "", "default":
		return inv, 0, nil
	case "dynamic":
		if c.MaxPositionEmbeddings <= 0 {
			return nil, 0, fmt.Errorf("%w: rope_scaling dynamic needs max_position_embeddings", arch.ErrConfig)
		}
		return inv, c.MaxPositionEmbeddings, nil
	case "linear":
		if rs.Factor <= 0 {
			return nil, 0, fmt.Errorf("%w: rope_scaling linear needs a positive factor, got %v", arch.ErrConfig, rs.Factor)
		}
		for i := range inv {
			inv[i] /= float32(rs.Factor)
		}
		return inv, 0, nil
	case "llama3":
		if rs.Factor <= 0 || rs.OriginalMaxPositionEmbeddings <= 0 || rs.HighFreqFactor <= rs.LowFreqFactor || rs.LowFreqFactor <= 0 {
			return nil, 0, fmt.Errorf("%w: rope_scaling llama3 needs factor, low_freq_factor < high_freq_factor and original_max_position_embeddings", arch.ErrConfig)
		}
		return llama3Frequencies(inv, rs.Factor, rs.LowFreqFactor, rs.HighFreqFactor, rs.OriginalMaxPositionEmbeddings), 0, nil
	}
	return nil, 0, fmt.Errorf("%w: rope_scaling type %q (supported: default, linear, dynamic, llama3)", ErrUnsupported, kind)
}

// llama3Frequencies applies transformers' _compute_llama3_parameters: long
// wavelengths are divided by factor, short ones kept, and the band between
// interpolated smoothly.
func llama3Frequencies(inv []float32, factor, low, high, oldCtx float64) []float32 {
	lowWavelen := oldCtx / low
	highWavelen := oldCtx / high
	out := make([]float32, len(inv))
	for i, f := range inv {
		wavelen := 2 * math.Pi / float64(f)
		switch {
		case wavelen < highWavelen:
			out[i] = f
		case wavelen > lowWavelen:
			out[i] = float32(float64(f) / factor)
		default:
			smooth := (oldCtx/wavelen - low) / (high - low)
			out[i] = float32((1-smooth)*float64(f)/factor + smooth*float64(f))
		}
	}
	return out
}

// slidingWindows returns each layer's attention window (0: full attention).
// Mistral applies sliding_window to every layer; Qwen2 only when
// use_sliding_window is true, and then to layers from max_window_layers on;
// an explicit layer_types list ("sliding_attention" / "full_attention")
// overrides both. Llama configs have no window.
func slidingWindows(cfg *arch.Config) ([]int, error) {
	c := cfg.Llama()
	out := make([]int, c.NumHiddenLayers)
	if c.SlidingWindow < 0 {
		return nil, fmt.Errorf("%w: sliding_window %d", arch.ErrConfig, c.SlidingWindow)
	}
	if c.SlidingWindow == 0 {
		return out, nil
	}
	var layerTypes []string
	if raw, ok := cfg.Raw["layer_types"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &layerTypes); err != nil {
			return nil, fmt.Errorf("%w: layer_types: %v", arch.ErrConfig, err)
		}
		if len(layerTypes) != c.NumHiddenLayers {
			return nil, fmt.Errorf("%w: layer_types has %d entries for %d layers", arch.ErrConfig, len(layerTypes), c.NumHiddenLayers)
		}
	}
	switch cfg.ModelType {
	case "mistral":
		for i := range out {
			out[i] = c.SlidingWindow
		}
	case "qwen2":
		var use bool
		if raw, ok := cfg.Raw["use_sliding_window"]; ok {
			_ = json.Unmarshal(raw, &use)
		}
		if !use {
			return out, nil
		}
		from := c.NumHiddenLayers
		if raw, ok := cfg.Raw["max_window_layers"]; ok {
			if err := json.Unmarshal(raw, &from); err != nil {
				return nil, fmt.Errorf("%w: max_window_layers: %v", arch.ErrConfig, err)
			}
		}
		for i := range out {
			if i >= from {
				out[i] = c.SlidingWindow
			}
		}
	default:
		return out, nil
	}
	for i, t := range layerTypes {
		switch t {
		case "sliding_attention":
			out[i] = c.SlidingWindow
		case "full_attention":
			out[i] = 0
		default:
			return nil, fmt.Errorf("%w: layer type %q", ErrUnsupported, t)
		}
	}
	return out, nil
}

func (m *llama) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	threads := rc.threads
	n, H, dh := len(ids), m.hidden, m.headDim
	qw, kvw := m.heads*dh, m.kvHeads*dh
	sc := m.scratch.get()
	defer m.scratch.put(sc)
	x := make([]float32, n*H) // returned: not scratch
	a := sc.take(n * H)
	embed(x, m.embed, ids)
	q, k, v := sc.take(n*qw), sc.take(n*kvw), sc.take(n*kvw)
	ctxBuf := sc.take(n * qw)
	gate, up := sc.take(n*m.inter), sc.take(n*m.inter)
	att := attention{heads: m.heads, kvHeads: m.kvHeads, headDim: dh, scale: float32(1 / math.Sqrt(float64(dh))), causal: true}
	rope := m.ropeTable(n)
	for _, l := range m.layers {
		if err := rc.layer(ctx); err != nil {
			return nil, err
		}
		l.inNorm.rmsNormRows(a, x, n, threads)
		l.q.apply(q, a, n, rc)
		l.k.apply(k, a, n, rc)
		l.v.apply(v, a, n, rc)
		if l.qNorm.w != nil { // Qwen3: each head of q and k normalized
			l.qNorm.rmsNormRows(q, q, n*m.heads, threads)
			l.kNorm.rmsNormRows(k, k, n*m.kvHeads, threads)
		}
		rotateRows(rope, q, k, n, m.heads, m.kvHeads, dh, threads)
		att.run(ctxBuf, rowMajor(q, qw), rowMajor(k, kvw), rowMajor(v, kvw), n, l.window, threads)
		l.o.apply(a, ctxBuf, n, rc)
		addPar(x, a, n, H, threads)
		l.postNorm.rmsNormRows(a, x, n, threads)
		if l.moe != nil {
			l.moe.run(a, a, n, rc)
		} else {
			l.mlp(a, a, gate, up, n, m.act, rc)
		}
		addPar(x, a, n, H, threads)
	}
	if err := rc.layer(ctx); err != nil { // the head is a layer of its own
		return nil, err
	}
	m.norm.rmsNorm(x, x, n)
	out := []Output{{Name: OutputLastHiddenState, Shape: []int{1, n, H}, Data: x}}
	if m.lmHead != nil {
		logits := make([]float32, n*m.lmHead.Out)
		rc.linear(logits, x, n, m.lmHead, nil)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, n, m.lmHead.Out}, Data: logits})
	}
	if m.score != nil {
		out = append(out, m.score.apply(x, ids, H, rc))
	}
	return out, nil
}
