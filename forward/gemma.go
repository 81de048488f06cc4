package forward

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// gemma is transformers' GemmaForCausalLM, Gemma2ForCausalLM and
// Gemma3ForCausalLM (and their *Model): Llama's decoder with (1 + weight)
// RMSNorms, embeddings scaled by sqrt(hidden_size) and a gelu-tanh gated
// MLP; Gemma 2 and 3 normalize the attention and MLP outputs too, scale
// scores by query_pre_attn_scalar, soft-cap scores and logits and
// alternate sliding-window and full layers; Gemma 3 normalizes each head
// of q and k and rotates its sliding layers with a base of their own.
type gemma struct {
	hidden, heads, kvHeads, headDim, inter int
	embed                                  *kernels.Weight
	// embedScale is sqrt(hidden_size) rounded to the dtype the model
	// computes in, as transformers rounds it: float32 here, whatever the
	// weights' dtype (transformers run in bf16 rounds it to bf16; the
	// fixtures, like every fixture, are its float32 run).
	embedScale         float32
	layers             []gemmaLayer
	norm               norm
	act                func([]float32)
	attnScale, attnCap float32
	finalCap           float32
	// global are the rotary frequencies of the full-attention layers (of
	// all layers before Gemma 3), local those of Gemma 3's sliding ones.
	global, local []float32
	lmHead        *kernels.Weight // nil for the base model
	score         *seqClassifier  // *ForSequenceClassification's head
	scratch       scratchPool     // activation buffers reused between runs
}

type gemmaLayer struct {
	// inNorm precedes attention and preFF the MLP; postAttn and postFF
	// (Gemma 2, 3) normalize their outputs; qNorm and kNorm (Gemma 3)
	// each head of q and k.
	inNorm, postAttn, preFF, postFF, qNorm, kNorm norm
	projections
	window int
}

func init() { loaders["gemma"] = loadGemma }

func loadGemma(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.Gemma()
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		class = [...]string{"GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM"}[c.Generation-1]
	}
	if !cfg.OfFamily(class) {
		return nil, Info{}, fmt.Errorf("%w: architecture %s with model_type %s", ErrUnsupported, class, cfg.ModelType)
	}
	if err := s.detectPrefix(c.Layout()); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	act, err := activation(c.HiddenActivation)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	if c.HeadDim%2 != 0 {
		return nil, Info{}, fmt.Errorf("%w: %s: head_dim %d is odd; rotary embeddings need an even one", ErrUnsupported, class, c.HeadDim)
	}
	global, maxPositions, err := ropeFrequencies(cfg)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	H, I, dh := c.HiddenSize, c.IntermediateSize, c.HeadDim
	nh, nkv := c.NumAttentionHeads, c.NumKeyValueHeads
	m := &gemma{hidden: H, heads: nh, kvHeads: nkv, headDim: dh, inter: I, act: act, global: global,
		embedScale: float32(math.Sqrt(float64(H))), attnScale: float32(1 / math.Sqrt(c.QueryPreAttnScalar)),
		attnCap: float32(c.AttnLogitSoftcapping), finalCap: float32(c.FinalLogitSoftcapping)}
	if c.Generation == 3 {
		m.local = kernels.RoPEInvFreq(dh, c.RopeLocalBaseFreq)
	}
	if m.embed, err = s.embedding(arch.LlamaEmbeddings, c.VocabSize, H); err != nil {
		return nil, Info{}, err
	}
	type layerNorm struct {
		dst  *norm
		name string
		n    int
	}
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := arch.LlamaLayer(i)
		l := gemmaLayer{window: c.Windows[i]}
		// Gemma 1's post_attention_layernorm precedes the MLP, as Llama's.
		norms := []layerNorm{{&l.inNorm, arch.LlamaInputNorm, H}, {&l.preFF, arch.LlamaPostAttentionNorm, H}}
		if c.Generation > 1 {
			norms = []layerNorm{{&l.inNorm, arch.LlamaInputNorm, H}, {&l.postAttn, arch.LlamaPostAttentionNorm, H},
				{&l.preFF, arch.GemmaPreFFNorm, H}, {&l.postFF, arch.GemmaPostFFNorm, H}}
		}
		if c.Generation == 3 {
			norms = append(norms, layerNorm{&l.qNorm, arch.Qwen3QNorm, dh}, layerNorm{&l.kNorm, arch.Qwen3KNorm, dh})
		}
		for _, x := range norms {
			if *x.dst, err = loadGemmaNorm(s, p+x.name, x.n, c.RMSNormEps); err != nil {
				return nil, Info{}, err
			}
		}
		if l.projections, err = loadProjections(s, p, H, I, nh, nkv, dh); err != nil {
			return nil, Info{}, err
		}
		m.layers = append(m.layers, l)
	}
	if m.norm, err = loadGemmaNorm(s, arch.LlamaFinalNorm, H, c.RMSNormEps); err != nil {
		return nil, Info{}, err
	}
	info := Info{Family: "gemma", Architecture: class, VocabSize: c.VocabSize, HiddenSize: H, Layers: c.NumHiddenLayers,
		MaxPositions: maxPositions, Outputs: []string{OutputLastHiddenState}}
	if strings.HasSuffix(class, "ForCausalLM") {
		if m.lmHead, err = lmHead(s, c.Layout().LMHead, c.TieWordEmbeddings, m.embed, c.VocabSize, H, class); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
	}
	if sequenceClassification(class) { // no soft-capping: it is the LM head's
		if m.score, info.NumLabels, err = loadSeqClassifier(s, cfg, class, H); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
		info.PadTokenID = m.score.padInfo()
	}
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

// loadGemmaNorm loads a Gemma RMSNorm, which scales by 1 + weight (computed
// in float32, as transformers computes it).
func loadGemmaNorm(s *tensorSet, name string, n int, eps float64) (norm, error) {
	r, err := loadNorm(s, name, n, false, eps)
	if err != nil {
		return norm{}, err
	}
	w := make([]float32, len(r.w))
	for i, v := range r.w {
		w[i] = 1 + v
	}
	r.w = w
	return r, nil
}

func (m *gemma) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	n, H, dh := len(ids), m.hidden, m.headDim
	qw, kvw := m.heads*dh, m.kvHeads*dh
	sc := m.scratch.get()
	defer m.scratch.put(sc)
	x := make([]float32, n*H) // returned: not scratch
	a := sc.take(n * H)
	embed(x, m.embed, ids)
	for i := range x {
		x[i] *= m.embedScale
	}
	q, k, v := sc.take(n*qw), sc.take(n*kvw), sc.take(n*kvw)
	ctxBuf := sc.take(n * qw)
	gate, up := sc.take(n*m.inter), sc.take(n*m.inter)
	att := attention{heads: m.heads, kvHeads: m.kvHeads, headDim: dh, scale: m.attnScale, causal: true, softcap: m.attnCap}
	global := kernels.NewRoPETable(m.global, n)
	local := global
	if m.local != nil {
		local = kernels.NewRoPETable(m.local, n)
	}
	for _, l := range m.layers {
		if err := rc.layer(ctx); err != nil {
			return nil, err
		}
		l.inNorm.rmsNormRows(a, x, n, rc.threads)
		l.q.apply(q, a, n, rc)
		l.k.apply(k, a, n, rc)
		l.v.apply(v, a, n, rc)
		if l.qNorm.w != nil {
			l.qNorm.rmsNormRows(q, q, n*m.heads, rc.threads)
			l.kNorm.rmsNormRows(k, k, n*m.kvHeads, rc.threads)
		}
		rope := global
		if l.window > 0 {
			rope = local
		}
		rotateRows(rope, q, k, n, m.heads, m.kvHeads, dh, rc.threads)
		att.run(ctxBuf, rowMajor(q, qw), rowMajor(k, kvw), rowMajor(v, kvw), n, l.window, rc.threads)
		l.o.apply(a, ctxBuf, n, rc)
		if l.postAttn.w != nil {
			l.postAttn.rmsNormRows(a, a, n, rc.threads)
		}
		addPar(x, a, n, H, rc.threads)
		l.preFF.rmsNormRows(a, x, n, rc.threads)
		l.mlp(a, a, gate, up, n, m.act, rc)
		if l.postFF.w != nil {
			l.postFF.rmsNormRows(a, a, n, rc.threads)
		}
		addPar(x, a, n, H, rc.threads)
	}
	if err := rc.layer(ctx); err != nil { // the head is a layer of its own
		return nil, err
	}
	m.norm.rmsNorm(x, x, n)
	out := []Output{{Name: OutputLastHiddenState, Shape: []int{1, n, H}, Data: x}}
	if m.lmHead != nil {
		logits := make([]float32, n*m.lmHead.Out)
		rc.linear(logits, x, n, m.lmHead, nil)
		if m.finalCap > 0 {
			softcap(logits, m.finalCap)
		}
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, n, m.lmHead.Out}, Data: logits})
	}
	if m.score != nil {
		out = append(out, m.score.apply(x, ids, H, rc))
	}
	return out, nil
}
