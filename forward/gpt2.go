package forward

import (
	"context"
	"fmt"
	"math"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// gpt2 is transformers' GPT2Model (pre-LN decoder with learned positions and
// Conv1D layers) with GPT2LMHeadModel's head.
type gpt2 struct {
	embd, heads, inner int
	wte, wpe           *kernels.Weight
	layers             []gpt2Layer
	lnF                norm
	act                func([]float32)
	lmHead             *kernels.Weight // nil for GPT2Model
	score              *seqClassifier  // GPT2ForSequenceClassification's head
	scaleAttn          bool
	scaleByLayer       bool
}

type gpt2Layer struct {
	ln1, ln2            norm
	attn, proj, fc, out linear
	heads               int // fewer than n_head when pruned_heads removed some
}

func init() { loaders["gpt2"] = loadGPT2 }

// GPT-2 checkpoints: GPT2Model's tensors carry no prefix, GPT2LMHeadModel
// puts them under "transformer."; Conv1D weights are stored [in][out]; the
// attn.bias (causal mask) and attn.masked_bias buffers are ignored.
func loadGPT2(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.GPT2()
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		class = "GPT2Model"
		if _, ok := s.g.Tensor(arch.GPT2LMHead + ".weight"); ok {
			class = "GPT2LMHeadModel"
		} else if _, ok := s.g.Tensor(arch.DecoderClassifier + ".weight"); ok {
			class = "GPT2ForSequenceClassification"
		}
	}
	if !cfg.OfFamily(class) {
		return nil, Info{}, fmt.Errorf("%w: architecture %s with model_type gpt2", ErrUnsupported, class)
	}
	if err := s.detectPrefix(c.Layout()); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	act, err := activation(c.ActivationFunction)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	E, inner := c.NEmbd, c.NInner
	m := &gpt2{embd: E, heads: c.NHead, inner: inner, act: act,
		scaleAttn: c.ScaleAttnWeights, scaleByLayer: c.ScaleAttnByInverseLayerIdx}
	if m.wte, err = s.embedding(arch.GPT2TokenEmbeddings, c.VocabSize, E); err != nil {
		return nil, Info{}, err
	}
	if m.wpe, err = s.embedding(arch.GPT2PositionEmbeddings, c.NPositions, E); err != nil {
		return nil, Info{}, err
	}
	heads, err := layerHeads(cfg, c.NHead, c.NLayer)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	dh := E / c.NHead
	for i := 0; i < c.NLayer; i++ {
		p := arch.GPT2Layer(i)
		l := gpt2Layer{heads: heads[i]}
		A := heads[i] * dh
		if l.ln1, err = loadNorm(s, p+arch.GPT2Norm1, E, true, c.LayerNormEpsilon); err != nil {
			return nil, Info{}, err
		}
		if l.ln2, err = loadNorm(s, p+arch.GPT2Norm2, E, true, c.LayerNormEpsilon); err != nil {
			return nil, Info{}, err
		}
		for _, x := range []struct {
			dst     *linear
			name    string
			out, in int
		}{
			{&l.attn, arch.GPT2Attention, 3 * A, E}, {&l.proj, arch.GPT2AttentionOutput, E, A},
			{&l.fc, arch.GPT2FC, inner, E}, {&l.out, arch.GPT2MLPOutput, E, inner},
		} {
			if *x.dst, err = loadLinear(s, p+x.name, x.out, x.in, true, true); err != nil {
				return nil, Info{}, err
			}
		}
		m.layers = append(m.layers, l)
	}
	if m.lnF, err = loadNorm(s, arch.GPT2FinalNorm, E, true, c.LayerNormEpsilon); err != nil {
		return nil, Info{}, err
	}
	info := Info{Family: "gpt2", Architecture: class, VocabSize: c.VocabSize, HiddenSize: E, Layers: c.NLayer,
		MaxPositions: c.NPositions, Outputs: []string{OutputLastHiddenState}}
	if class == "GPT2LMHeadModel" {
		if m.lmHead, err = lmHead(s, c.Layout().LMHead, c.TieWordEmbeddings, m.wte, c.VocabSize, E, class); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
	}
	if class == "GPT2ForSequenceClassification" {
		if m.score, info.NumLabels, err = loadSeqClassifier(s, cfg, class, E); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
		info.PadTokenID = m.score.padInfo()
	}
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

func (m *gpt2) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	threads := rc.threads
	n, E := len(ids), m.embd
	x := make([]float32, n*E)
	a := make([]float32, n*E)
	embed(x, m.wte, ids)
	addRows(x, m.wpe, n, -1)
	qkv := make([]float32, n*3*E)
	ctxBuf := make([]float32, n*E)
	h := make([]float32, n*m.inner)
	dh := E / m.heads
	for i, l := range m.layers {
		if err := rc.layer(ctx); err != nil {
			return nil, err
		}
		scale := 1.0
		if m.scaleAttn {
			scale /= math.Sqrt(float64(dh))
		}
		if m.scaleByLayer {
			scale /= float64(i + 1)
		}
		A := l.heads * dh
		att := attention{heads: l.heads, kvHeads: l.heads, headDim: dh, scale: float32(scale), causal: true}
		l.ln1.layerNorm(a, x, n)
		l.attn.apply(qkv, a, n, rc)
		att.run(ctxBuf, span{qkv, 3 * A, 0}, span{qkv, 3 * A, A}, span{qkv, 3 * A, 2 * A}, n, 0, threads)
		l.proj.apply(a, ctxBuf, n, rc)
		add(x, a)
		l.ln2.layerNorm(a, x, n)
		l.fc.apply(h, a, n, rc)
		m.act(h)
		l.out.apply(a, h, n, rc)
		add(x, a)
	}
	if err := rc.layer(ctx); err != nil { // the head is a layer of its own
		return nil, err
	}
	m.lnF.layerNorm(x, x, n)
	out := []Output{{Name: OutputLastHiddenState, Shape: []int{1, n, E}, Data: x}}
	if m.lmHead != nil {
		logits := make([]float32, n*m.lmHead.Out)
		rc.linear(logits, x, n, m.lmHead, nil)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, n, m.lmHead.Out}, Data: logits})
	}
	if m.score != nil {
		out = append(out, m.score.apply(x, ids, E, rc))
	}
	return out, nil
}
