package forward

import (
	"context"
	"fmt"
	"math"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// bert is transformers' BertModel (embeddings, post-LN encoder, optional
// pooler) with an optional BertForSequenceClassification head.
type bert struct {
	hidden, heads, inter int
	word, pos, typ       *kernels.Weight // typ nil when type_vocab_size is 0
	embNorm              norm
	layers               []bertLayer
	act                  func([]float32)
	pooler               *linear // nil without a pooler
	classifier           *linear // nil without a classification head
}

type bertLayer struct {
	q, k, v, o, up, down linear
	attnNorm, outNorm    norm
	// heads is the layer's head count: fewer than num_attention_heads when
	// config.json's pruned_heads removed some.
	heads int
}

func init() { loaders["bert"] = loadBert }

// BERT checkpoints: BertModel's tensors carry no prefix; the task models
// (BertForSequenceClassification, BertForMaskedLM, ...) put them under
// "bert." and their heads (classifier.*, cls.*) at the top level (see
// arch.BertLayout).
func loadBert(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.Bert()
	if c.PositionEmbeddingType != "" && c.PositionEmbeddingType != "absolute" {
		return nil, Info{}, fmt.Errorf("%w: bert position_embedding_type %q (only \"absolute\")", ErrUnsupported, c.PositionEmbeddingType)
	}
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		class = "BertModel"
		if _, ok := s.g.Tensor(arch.BertClassifier + ".weight"); ok {
			class = "BertForSequenceClassification"
		}
	}
	if !cfg.OfFamily(class) {
		return nil, Info{}, fmt.Errorf("%w: architecture %s with model_type bert", ErrUnsupported, class)
	}
	withHead := class == "BertForSequenceClassification"
	if err := s.detectPrefix(c.Layout()); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	act, err := activation(c.HiddenAct)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	H, I := c.HiddenSize, c.IntermediateSize
	m := &bert{hidden: H, heads: c.NumAttentionHeads, inter: I, act: act}
	if m.word, err = s.embedding(arch.BertWordEmbeddings, c.VocabSize, H); err != nil {
		return nil, Info{}, err
	}
	if m.pos, err = s.embedding(arch.BertPositionEmbeddings, c.MaxPositionEmbeddings, H); err != nil {
		return nil, Info{}, err
	}
	if c.TypeVocabSize > 0 {
		if m.typ, err = s.embedding(arch.BertTokenTypeEmbeddings, c.TypeVocabSize, H); err != nil {
			return nil, Info{}, err
		}
	}
	if m.embNorm, err = loadNorm(s, arch.BertEmbeddingsNorm, H, true, c.LayerNormEps); err != nil {
		return nil, Info{}, err
	}
	heads, err := layerHeads(cfg, c.NumAttentionHeads, c.NumHiddenLayers)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	dh := H / c.NumAttentionHeads
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := arch.BertLayer(i)
		l := bertLayer{heads: heads[i]}
		A := heads[i] * dh
		for _, x := range []struct {
			dst     *linear
			name    string
			out, in int
		}{
			{&l.q, arch.BertQuery, A, H}, {&l.k, arch.BertKey, A, H},
			{&l.v, arch.BertValue, A, H}, {&l.o, arch.BertAttentionOutput, H, A},
			{&l.up, arch.BertIntermediate, I, H}, {&l.down, arch.BertOutput, H, I},
		} {
			if *x.dst, err = loadLinear(s, p+x.name, x.out, x.in, false, true); err != nil {
				return nil, Info{}, err
			}
		}
		if l.attnNorm, err = loadNorm(s, p+arch.BertAttentionNorm, H, true, c.LayerNormEps); err != nil {
			return nil, Info{}, err
		}
		if l.outNorm, err = loadNorm(s, p+arch.BertOutputNorm, H, true, c.LayerNormEps); err != nil {
			return nil, Info{}, err
		}
		m.layers = append(m.layers, l)
	}
	if s.has(arch.BertPooler+".weight", false) || withHead {
		pl, err := loadLinear(s, arch.BertPooler, H, H, false, true)
		if err != nil {
			return nil, Info{}, err
		}
		m.pooler = &pl
	}
	info := Info{Family: "bert", Architecture: class, VocabSize: c.VocabSize, HiddenSize: H,
		Layers: c.NumHiddenLayers, MaxPositions: c.MaxPositionEmbeddings,
		Outputs: []string{OutputLastHiddenState}}
	if m.pooler != nil {
		info.Outputs = append(info.Outputs, OutputPooler)
	}
	if withHead {
		cw := arch.BertClassifier + ".weight"
		t, ok := s.lookup(cw, true)
		if !ok {
			return nil, Info{}, fmt.Errorf("%w: %s: missing tensor %q", ErrWeights, class, cw)
		}
		if len(t.Shape) != 2 || t.Shape[0] <= 0 {
			return nil, Info{}, fmt.Errorf("%w: tensor %q has shape %v, want [num_labels, %d]", ErrWeights, cw, t.Shape, H)
		}
		labels := int(t.Shape[0])
		if c.NumLabels > 0 && c.NumLabels != labels {
			return nil, Info{}, fmt.Errorf("%w: tensor %q has %d rows, config.json names %d labels", ErrWeights, cw, labels, c.NumLabels)
		}
		w, err := s.matrix(arch.BertClassifier, labels, H, false, true)
		if err != nil {
			return nil, Info{}, err
		}
		b, err := s.vector(arch.BertClassifier+".bias", labels, true)
		if err != nil {
			return nil, Info{}, err
		}
		m.classifier = &linear{w: w, b: b}
		info.Outputs = append(info.Outputs, OutputLogits)
		info.NumLabels = labels
	}
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

func (m *bert) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	threads := rc.threads
	n, H := len(ids), m.hidden
	x := make([]float32, n*H)
	tmp := make([]float32, n*H)
	embed(x, m.word, ids)
	addRows(x, m.pos, n, -1)
	if m.typ != nil {
		addRows(x, m.typ, n, 0)
	}
	m.embNorm.layerNorm(x, x, n)

	q := make([]float32, n*H)
	k := make([]float32, n*H)
	v := make([]float32, n*H)
	ctxBuf := make([]float32, n*H)
	up := make([]float32, n*m.inter)
	dh := H / m.heads
	for _, l := range m.layers {
		if err := rc.layer(ctx); err != nil {
			return nil, err
		}
		A := l.heads * dh
		att := attention{heads: l.heads, kvHeads: l.heads, headDim: dh, scale: float32(1 / math.Sqrt(float64(dh)))}
		l.q.apply(q, x, n, rc)
		l.k.apply(k, x, n, rc)
		l.v.apply(v, x, n, rc)
		att.run(ctxBuf, rowMajor(q, A), rowMajor(k, A), rowMajor(v, A), n, 0, threads)
		l.o.apply(tmp, ctxBuf, n, rc)
		add(tmp, x)
		l.attnNorm.layerNorm(x, tmp, n)
		l.up.apply(up, x, n, rc)
		m.act(up)
		l.down.apply(tmp, up, n, rc)
		add(tmp, x)
		l.outNorm.layerNorm(x, tmp, n)
	}
	if err := rc.layer(ctx); err != nil { // the head is a layer of its own
		return nil, err
	}
	out := []Output{{Name: OutputLastHiddenState, Shape: []int{1, n, H}, Data: x}}
	if m.pooler == nil {
		return out, nil
	}
	pooled := make([]float32, H)
	m.pooler.apply(pooled, x[:H], 1, rc)
	tanh(pooled)
	out = append(out, Output{Name: OutputPooler, Shape: []int{1, H}, Data: pooled})
	if m.classifier != nil {
		logits := make([]float32, m.classifier.w.Out)
		m.classifier.apply(logits, pooled, 1, rc)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, len(logits)}, Data: logits})
	}
	return out, nil
}
