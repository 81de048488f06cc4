package forward

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/hubmirror/hubmirror/formats"
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
	scaleAttn          bool
	scaleByLayer       bool
}

type gpt2Layer struct {
	ln1, ln2            norm
	attn, proj, fc, out linear
	heads               int // fewer than n_head when pruned_heads removed some
}

// GPT-2 checkpoints: GPT2Model's tensors carry no prefix, GPT2LMHeadModel
// puts them under "transformer."; Conv1D weights are stored [in][out]; the
// attn.bias (causal mask) and attn.masked_bias buffers are ignored.
func loadGPT2(s *tensorSet, cfg *formats.Config) (network, Info, error) {
	c := cfg.GPT2
	arch := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		arch = "GPT2Model"
		if _, ok := s.g.Tensor("lm_head.weight"); ok {
			arch = "GPT2LMHeadModel"
		}
	}
	if !strings.HasPrefix(arch, "GPT2") {
		return nil, Info{}, fmt.Errorf("%w: architecture %s with model_type gpt2", ErrUnsupported, arch)
	}
	if err := s.detectPrefix("wte.weight", "", "transformer."); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", arch, err)
	}
	act, err := activation(c.ActivationFunction)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", arch, err)
	}
	E, inner := c.NEmbd, c.NInner
	m := &gpt2{embd: E, heads: c.NHead, inner: inner, act: act,
		scaleAttn: c.ScaleAttnWeights, scaleByLayer: c.ScaleAttnByInverseLayerIdx}
	if m.wte, err = s.embedding("wte.weight", c.VocabSize, E); err != nil {
		return nil, Info{}, err
	}
	if m.wpe, err = s.embedding("wpe.weight", c.NPositions, E); err != nil {
		return nil, Info{}, err
	}
	heads, err := layerHeads(cfg, c.NHead, c.NLayer)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", arch, err)
	}
	dh := E / c.NHead
	for i := 0; i < c.NLayer; i++ {
		p := fmt.Sprintf("h.%d.", i)
		l := gpt2Layer{heads: heads[i]}
		A := heads[i] * dh
		if l.ln1, err = loadNorm(s, p+"ln_1", E, true, c.LayerNormEpsilon); err != nil {
			return nil, Info{}, err
		}
		if l.ln2, err = loadNorm(s, p+"ln_2", E, true, c.LayerNormEpsilon); err != nil {
			return nil, Info{}, err
		}
		for _, x := range []struct {
			dst     *linear
			name    string
			out, in int
		}{
			{&l.attn, "attn.c_attn", 3 * A, E}, {&l.proj, "attn.c_proj", E, A},
			{&l.fc, "mlp.c_fc", inner, E}, {&l.out, "mlp.c_proj", E, inner},
		} {
			if *x.dst, err = loadLinear(s, p+x.name, x.out, x.in, true, true); err != nil {
				return nil, Info{}, err
			}
		}
		m.layers = append(m.layers, l)
	}
	if m.lnF, err = loadNorm(s, "ln_f", E, true, c.LayerNormEpsilon); err != nil {
		return nil, Info{}, err
	}
	info := Info{Family: "gpt2", Architecture: arch, VocabSize: c.VocabSize, HiddenSize: E, Layers: c.NLayer,
		MaxPositions: c.NPositions, Outputs: []string{OutputLastHiddenState}}
	if arch == "GPT2LMHeadModel" {
		if m.lmHead, err = lmHead(s, c.TieWordEmbeddings, m.wte, c.VocabSize, E, arch); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
	}
	s.markUsed(formats.IsBuffer)
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
	return out, nil
}
