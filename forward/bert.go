package forward

import (
	"context"
	"fmt"

	"github.com/hubmirror/hubmirror/arch"
)

// bert is transformers' BertModel (embeddings, post-LN encoder, optional
// pooler) with an optional BertForSequenceClassification head.
type bert struct {
	enc        *encoder
	pooler     *linear // nil without a pooler
	classifier *linear // nil without a classification head
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
	H := c.HiddenSize
	enc, err := loadEncoder(s, cfg, class, bertSizes(c), bertNames, arch.BertLayer)
	if err != nil {
		return nil, Info{}, err
	}
	m := &bert{enc: enc}
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
		if m.classifier, info.NumLabels, err = classifierHead(s, class, arch.BertClassifier, H, c.NumLabels); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
	}
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

// bertSizes are the encoder sizes of a BERT-style config.
func bertSizes(c *arch.BertConfig) encoderSizes {
	return encoderSizes{vocab: c.VocabSize, positions: c.MaxPositionEmbeddings, types: c.TypeVocabSize,
		hidden: c.HiddenSize, heads: c.NumAttentionHeads, inter: c.IntermediateSize, layers: c.NumHiddenLayers,
		eps: c.LayerNormEps, act: c.HiddenAct}
}

func (m *bert) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	x, out, err := m.enc.runWithHead(ctx, ids, rc)
	if err != nil {
		return nil, err
	}
	H := m.enc.hidden
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
