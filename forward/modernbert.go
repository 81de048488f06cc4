package forward

import (
	"context"
	"fmt"
	"math"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// modernbert is transformers' ModernBertModel (eager attention, no
// unpadding: batch 1): the token embedding normalized, pre-LN layers of
// rotary self-attention (fused Wqkv; local layers see local_attention/2
// positions either way and rotate with their own base) and a GeGLU MLP,
// then final_norm; with ModernBertForMaskedLM's or
// ModernBertForSequenceClassification's head.
type modernbert struct {
	hidden, heads, inter int
	embed                *kernels.Weight
	embNorm, finalNorm   norm
	layers               []modernbertLayer
	act                  func([]float32)
	// invFreq holds the rotary frequencies of each distinct base; a
	// layer's rope indexes it.
	invFreq [][]float32
	mlm     *mlmHead // ModernBertForMaskedLM
	// cls is ModernBertForSequenceClassification's head: the prediction
	// head (dense, activation, norm) with the classifier as its decoder,
	// on the first token or, with mean, the mean of the tokens.
	cls  *mlmHead
	mean bool
}

type modernbertLayer struct {
	attnNorm       norm // w nil in layer 0 (nn.Identity)
	qkv, o, wi, wo linear
	mlpNorm        norm
	// reach bounds a local layer's keys (attention.reach); 0 in a global
	// layer.
	reach int
	rope  int
}

func init() { loaders["modernbert"] = loadModernBert }

func loadModernBert(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.ModernBert()
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		class = "ModernBertModel"
	}
	switch class {
	case "ModernBertModel", "ModernBertForMaskedLM", "ModernBertForSequenceClassification":
	default:
		return nil, Info{}, fmt.Errorf("%w: architecture %s (the forward pass runs ModernBertModel, ModernBertForMaskedLM and ModernBertForSequenceClassification)", ErrUnsupported, class)
	}
	if present := cfg.Raw["rope_scaling"]; present != nil && string(present) != "null" {
		return nil, Info{}, fmt.Errorf("%w: %s with rope_scaling (only the default rotary embedding)", ErrUnsupported, class)
	}
	for i, t := range c.RopeType {
		if t != "default" {
			return nil, Info{}, fmt.Errorf("%w: %s layer %d: rope_type %q (only \"default\")", ErrUnsupported, class, i, t)
		}
	}
	act, err := activation(c.HiddenActivation)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	if err := s.detectPrefix(c.Layout()); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	H, I, eps := c.HiddenSize, c.IntermediateSize, c.NormEps
	m := &modernbert{hidden: H, heads: c.NumAttentionHeads, inter: I, act: act}
	if m.embed, err = s.embedding(arch.ModernBertEmbeddings+".weight", c.VocabSize, H); err != nil {
		return nil, Info{}, err
	}
	if m.embNorm, err = loadNorm(s, arch.ModernBertEmbeddingsNorm, H, c.NormBias, eps); err != nil {
		return nil, Info{}, err
	}
	if m.finalNorm, err = loadNorm(s, arch.ModernBertFinalNorm, H, c.NormBias, eps); err != nil {
		return nil, Info{}, err
	}
	dh := H / c.NumAttentionHeads
	ropes := map[float64]int{}
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := arch.ModernBertLayer(i)
		var l modernbertLayer
		if i > 0 {
			if l.attnNorm, err = loadNorm(s, p+arch.ModernBertAttnNorm, H, c.NormBias, eps); err != nil {
				return nil, Info{}, err
			}
		}
		if l.mlpNorm, err = loadNorm(s, p+arch.ModernBertMLPNorm, H, c.NormBias, eps); err != nil {
			return nil, Info{}, err
		}
		for _, x := range []struct {
			dst     *linear
			name    string
			out, in int
			bias    bool
		}{
			{&l.qkv, arch.ModernBertQKV, 3 * H, H, c.AttentionBias}, {&l.o, arch.ModernBertAttnOutput, H, H, c.AttentionBias},
			{&l.wi, arch.ModernBertMLPIn, 2 * I, H, c.MLPBias}, {&l.wo, arch.ModernBertMLPOut, H, I, c.MLPBias},
		} {
			if *x.dst, err = loadLinear(s, p+x.name, x.out, x.in, false, x.bias); err != nil {
				return nil, Info{}, err
			}
		}
		if c.Local[i] {
			l.reach = c.LocalAttention/2 + 1
		}
		theta := c.RopeTheta[i]
		r, ok := ropes[theta]
		if !ok {
			r = len(m.invFreq)
			ropes[theta] = r
			m.invFreq = append(m.invFreq, kernels.RoPEInvFreq(dh, theta))
		}
		l.rope = r
		m.layers = append(m.layers, l)
	}
	info := Info{Family: "modernbert", Architecture: class, VocabSize: c.VocabSize, HiddenSize: H,
		Layers: c.NumHiddenLayers, Outputs: []string{OutputLastHiddenState}}
	if class != "ModernBertModel" {
		h := &mlmHead{}
		if h.act, err = activation(c.ClassifierActivation); err != nil {
			return nil, Info{}, fmt.Errorf("%s: classifier_activation: %w", class, err)
		}
		if c.ClassifierBias {
			h.dense, err = loadAbsLinear(s, arch.ModernBertHeadDense, H, H)
		} else {
			h.dense.w, err = s.matrix(arch.ModernBertHeadDense, H, H, false, true)
		}
		if err != nil {
			return nil, Info{}, err
		}
		if c.NormBias {
			h.norm, err = loadAbsNorm(s, arch.ModernBertHeadNorm, H, eps)
		} else {
			h.norm.eps = float32(eps)
			h.norm.w, err = s.vector(arch.ModernBertHeadNorm+".weight", H, true)
		}
		if err != nil {
			return nil, Info{}, err
		}
		if class == "ModernBertForSequenceClassification" {
			var out *linear
			if out, info.NumLabels, err = classifierHead(s, class, arch.ModernBertClassifier, H, c.NumLabels); err != nil {
				return nil, Info{}, err
			}
			h.decoder = *out
			m.cls, m.mean = h, c.ClassifierPooling == "mean"
		} else {
			if h.decoder.w, err = lmHead(s, arch.ModernBertDecoder+".weight", c.TieWordEmbeddings, m.embed, c.VocabSize, H, class); err != nil {
				return nil, Info{}, err
			}
			if c.DecoderBias {
				if h.decoder.b, err = s.vector(arch.ModernBertDecoder+".bias", c.VocabSize, true); err != nil {
					return nil, Info{}, fmt.Errorf("%s: %w", class, err)
				}
			}
			m.mlm = h
		}
		info.Outputs = append(info.Outputs, OutputLogits)
	}
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

func (m *modernbert) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	n, H, I := len(ids), m.hidden, m.inter
	dh := H / m.heads
	x := make([]float32, n*H)
	a := make([]float32, n*H)
	qkv := make([]float32, n*3*H)
	q := make([]float32, n*H)
	k := make([]float32, n*H)
	v := make([]float32, n*H)
	ctxBuf := make([]float32, n*H)
	up := make([]float32, n*2*I)
	gated := make([]float32, n*I)
	ropes := make([]*kernels.RoPETable, len(m.invFreq))
	for i, f := range m.invFreq {
		ropes[i] = kernels.NewRoPETable(f, n)
	}
	embed(x, m.embed, ids)
	m.embNorm.layerNorm(x, x, n)
	for _, l := range m.layers {
		if err := rc.layer(ctx); err != nil {
			return nil, err
		}
		if l.attnNorm.w != nil {
			l.attnNorm.layerNorm(a, x, n)
		} else {
			copy(a, x)
		}
		l.qkv.apply(qkv, a, n, rc)
		for t := 0; t < n; t++ {
			row := qkv[t*3*H : (t+1)*3*H]
			copy(q[t*H:(t+1)*H], row[:H])
			copy(k[t*H:(t+1)*H], row[H:2*H])
			copy(v[t*H:(t+1)*H], row[2*H:])
		}
		rotateRows(ropes[l.rope], q, k, n, m.heads, m.heads, dh, rc.threads)
		att := attention{heads: m.heads, kvHeads: m.heads, headDim: dh, scale: float32(1 / math.Sqrt(float64(dh))), reach: l.reach}
		att.run(ctxBuf, rowMajor(q, H), rowMajor(k, H), rowMajor(v, H), n, 0, rc.threads)
		l.o.apply(a, ctxBuf, n, rc)
		add(x, a)
		l.mlpNorm.layerNorm(a, x, n)
		l.wi.apply(up, a, n, rc)
		geglu(gated, up, n, I, m.act)
		l.wo.apply(a, gated, n, rc)
		add(x, a)
	}
	m.finalNorm.layerNorm(x, x, n)
	if err := rc.layer(ctx); err != nil {
		return nil, err
	}
	out := []Output{{Name: OutputLastHiddenState, Shape: []int{1, n, H}, Data: x}}
	switch {
	case m.mlm != nil:
		logits := m.mlm.logits(x, n, rc)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, n, m.mlm.decoder.w.Out}, Data: logits})
	case m.cls != nil:
		pooled := x[:H]
		if m.mean {
			pooled = make([]float32, H)
			for t := 0; t < n; t++ {
				add(pooled, x[t*H:(t+1)*H])
			}
			for i := range pooled {
				pooled[i] /= float32(n)
			}
		}
		logits := m.cls.logits(pooled, 1, rc)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, len(logits)}, Data: logits})
	}
	return out, nil
}

// geglu computes dst[n×inter] = act(input)·gate from the rows of up
// [n×2·inter], each the input half then the gate half (ModernBERT's Wi
// output chunked in two).
func geglu(dst, up []float32, n, inter int, act func([]float32)) {
	for t := 0; t < n; t++ {
		row := up[t*2*inter : (t+1)*2*inter]
		in, gate := row[:inter], row[inter:]
		act(in)
		d := dst[t*inter : (t+1)*inter]
		for i := range d {
			d[i] = in[i] * gate[i]
		}
	}
}
