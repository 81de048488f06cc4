package forward

import (
	"context"
	"fmt"

	"github.com/hubmirror/hubmirror/arch"
)

// distilbert is transformers' DistilBertModel (word and position
// embeddings, BERT's post-LN encoder under its own names) with
// DistilBertForMaskedLM's or DistilBertForSequenceClassification's head.
type distilbert struct {
	enc *encoder
	mlm *mlmHead // *ForMaskedLM
	// pre and classifier are *ForSequenceClassification's head: pre
	// (with relu) on the first token, then the classifier.
	pre, classifier *linear
}

func init() { loaders["distilbert"] = loadDistilbert }

var distilbertNames = encoderNames{word: arch.DistilBertWordEmbeddings, pos: arch.DistilBertPositionEmbeddings,
	embNorm: arch.DistilBertEmbeddingsNorm, q: arch.DistilBertQuery, k: arch.DistilBertKey, v: arch.DistilBertValue,
	o: arch.DistilBertAttentionOutput, attnNorm: arch.DistilBertAttentionNorm, up: arch.DistilBertFFNIn,
	down: arch.DistilBertFFNOut, outNorm: arch.DistilBertOutputNorm}

func loadDistilbert(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.DistilBert()
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		class = "DistilBertModel"
	}
	switch class {
	case "DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification":
	default:
		return nil, Info{}, fmt.Errorf("%w: architecture %s (the forward pass runs DistilBertModel, DistilBertForMaskedLM and DistilBertForSequenceClassification)", ErrUnsupported, class)
	}
	if err := s.detectPrefix(c.Layout()); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	H := c.Dim
	z := encoderSizes{vocab: c.VocabSize, positions: c.MaxPositionEmbeddings, hidden: H, heads: c.NHeads,
		inter: c.HiddenDim, layers: c.NLayers, eps: arch.DistilBertEps, act: c.Activation}
	enc, err := loadEncoder(s, cfg, class, z, distilbertNames, arch.DistilBertLayer)
	if err != nil {
		return nil, Info{}, err
	}
	m := &distilbert{enc: enc}
	info := Info{Family: "distilbert", Architecture: class, VocabSize: c.VocabSize, HiddenSize: H,
		Layers: c.NLayers, MaxPositions: c.MaxPositionEmbeddings, Outputs: []string{OutputLastHiddenState}}
	switch class {
	case "DistilBertForMaskedLM":
		h := &mlmHead{act: enc.act}
		if h.dense, err = loadAbsLinear(s, arch.DistilBertVocabTransform, H, H); err != nil {
			return nil, Info{}, err
		}
		if h.norm, err = loadAbsNorm(s, arch.DistilBertVocabNorm, H, arch.DistilBertEps); err != nil {
			return nil, Info{}, err
		}
		if h.decoder.w, err = lmHead(s, arch.DistilBertVocabProjector+".weight", c.TieWordEmbeddings, enc.word, c.VocabSize, H, class); err != nil {
			return nil, Info{}, err
		}
		if h.decoder.b, err = s.vector(arch.DistilBertVocabProjector+".bias", c.VocabSize, true); err != nil {
			return nil, Info{}, fmt.Errorf("%s: %w", class, err)
		}
		m.mlm = h
		info.Outputs = append(info.Outputs, OutputLogits)
	case "DistilBertForSequenceClassification":
		pre, err := loadAbsLinear(s, arch.DistilBertPreClassifier, H, H)
		if err != nil {
			return nil, Info{}, err
		}
		m.pre = &pre
		if m.classifier, info.NumLabels, err = classifierHead(s, class, arch.DistilBertClassifier, H, c.NumLabels); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
	}
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

func (m *distilbert) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	x, out, err := m.enc.runWithHead(ctx, ids, rc)
	if err != nil {
		return nil, err
	}
	n, H := len(ids), m.enc.hidden
	switch {
	case m.mlm != nil:
		logits := m.mlm.logits(x, n, rc)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, n, m.mlm.decoder.w.Out}, Data: logits})
	case m.classifier != nil:
		t := make([]float32, H)
		m.pre.apply(t, x[:H], 1, rc)
		relu(t)
		logits := make([]float32, m.classifier.w.Out)
		m.classifier.apply(logits, t, 1, rc)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, len(logits)}, Data: logits})
	}
	return out, nil
}
