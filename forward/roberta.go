package forward

import (
	"context"
	"fmt"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// roberta is transformers' RobertaModel (and XLM-RoBERTa's, CamemBERT's):
// BERT's encoder with positions counted from pad_token_id+1 over the
// non-padding tokens, with RobertaForMaskedLM's or
// RobertaForSequenceClassification's head.
type roberta struct {
	enc *encoder
	robertaHeads
}

// robertaHeads are the heads RoBERTa and MPNet share, under the same names:
// the base model's pooler, *ForMaskedLM's lm_head (dense, gelu, norm,
// decoder) and *ForSequenceClassification's classifier (dense, tanh,
// out_proj on the first token). At most one is set.
type robertaHeads struct {
	pooler *linear
	mlm    *mlmHead
	// classDense and classOut are *ForSequenceClassification's head.
	classDense, classOut *linear
}

// headSpec says which of robertaHeads a model has and what it needs.
type headSpec struct {
	kind          string // "Model", "ForMaskedLM" or "ForSequenceClassification"
	class, pooler string
	hidden, vocab int
	labels        int
	eps           float64
	tied          bool
	word          *kernels.Weight
}

// loadRobertaHeads loads the head of spec.kind and adds its outputs to info.
func loadRobertaHeads(s *tensorSet, spec headSpec, info *Info) (robertaHeads, error) {
	var m robertaHeads
	H := spec.hidden
	var err error
	switch spec.kind {
	case "Model":
		if s.has(spec.pooler+".weight", false) {
			pl, err := loadLinear(s, spec.pooler, H, H, false, true)
			if err != nil {
				return m, err
			}
			m.pooler = &pl
			info.Outputs = append(info.Outputs, OutputPooler)
		}
	case "ForMaskedLM":
		h := &mlmHead{act: kernels.GELU}
		if h.dense, err = loadAbsLinear(s, arch.RobertaLMDense, H, H); err != nil {
			return m, err
		}
		if h.norm, err = loadAbsNorm(s, arch.RobertaLMNorm, H, spec.eps); err != nil {
			return m, err
		}
		if h.decoder.w, err = lmHead(s, arch.RobertaLMDecoder+".weight", spec.tied, spec.word, spec.vocab, H, spec.class); err != nil {
			return m, err
		}
		// lm_head.bias and lm_head.decoder.bias are one parameter; files
		// carry either or both.
		bias := arch.RobertaLMBias
		if !s.has(bias, true) {
			bias = arch.RobertaLMDecoder + ".bias"
		}
		if h.decoder.b, err = s.vector(bias, spec.vocab, true); err != nil {
			return m, fmt.Errorf("%s: %w", spec.class, err)
		}
		s.markUsed(func(n string) bool { return n == arch.RobertaLMBias || n == arch.RobertaLMDecoder+".bias" })
		m.mlm = h
		info.Outputs = append(info.Outputs, OutputLogits)
	case "ForSequenceClassification":
		d, err := loadAbsLinear(s, arch.RobertaClassDense, H, H)
		if err != nil {
			return m, err
		}
		m.classDense = &d
		if m.classOut, info.NumLabels, err = classifierHead(s, spec.class, arch.RobertaClassOutProj, H, spec.labels); err != nil {
			return m, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
	}
	return m, nil
}

// outputs appends the head's outputs for the final hidden states x [n×H].
func (m *robertaHeads) outputs(out []Output, x []float32, n, H int, rc runConfig) []Output {
	switch {
	case m.pooler != nil:
		pooled := make([]float32, H)
		m.pooler.apply(pooled, x[:H], 1, rc)
		tanh(pooled)
		out = append(out, Output{Name: OutputPooler, Shape: []int{1, H}, Data: pooled})
	case m.mlm != nil:
		logits := m.mlm.logits(x, n, rc)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, n, m.mlm.decoder.w.Out}, Data: logits})
	case m.classOut != nil:
		t := make([]float32, H)
		m.classDense.apply(t, x[:H], 1, rc)
		tanh(t)
		logits := make([]float32, m.classOut.w.Out)
		m.classOut.apply(logits, t, 1, rc)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, len(logits)}, Data: logits})
	}
	return out
}

func init() { loaders["roberta"] = loadRoberta }

// robertaPositions is transformers' create_position_ids_from_input_ids:
// the non-padding tokens are numbered pad+1, pad+2, ... in order; padding
// tokens get the position pad.
func robertaPositions(pad int) func(ids []int) []int {
	return func(ids []int) []int {
		out := make([]int, len(ids))
		next := pad + 1
		for t, id := range ids {
			if id == pad {
				out[t] = pad
				continue
			}
			out[t] = next
			next++
		}
		return out
	}
}

func loadRoberta(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.Roberta()
	if c.PositionEmbeddingType != "" && c.PositionEmbeddingType != "absolute" {
		return nil, Info{}, fmt.Errorf("%w: %s position_embedding_type %q (only \"absolute\")", ErrUnsupported, cfg.ModelType, c.PositionEmbeddingType)
	}
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		class = "RobertaModel"
	}
	kind := ""
	for _, k := range []string{"Model", "ForMaskedLM", "ForSequenceClassification"} {
		for _, p := range []string{"Roberta", "XLMRoberta", "Camembert"} {
			if class == p+k {
				kind = k
			}
		}
	}
	if kind == "" {
		return nil, Info{}, fmt.Errorf("%w: architecture %s (the forward pass runs RobertaModel, RobertaForMaskedLM and RobertaForSequenceClassification, and their XLMRoberta and Camembert equivalents)", ErrUnsupported, class)
	}
	if err := s.detectPrefix(c.Layout()); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	H := c.HiddenSize
	enc, err := loadEncoder(s, cfg, class, bertSizes(&c.BertConfig), bertNames, arch.BertLayer)
	if err != nil {
		return nil, Info{}, err
	}
	enc.positions = robertaPositions(c.PadTokenID)
	m := &roberta{enc: enc}
	info := Info{Family: "roberta", Architecture: class, VocabSize: c.VocabSize, HiddenSize: H,
		Layers: c.NumHiddenLayers, MaxPositions: c.Sizes().MaxPositions,
		Outputs: []string{OutputLastHiddenState}}
	if m.robertaHeads, err = loadRobertaHeads(s, headSpec{kind: kind, class: class, pooler: arch.BertPooler, hidden: H,
		vocab: c.VocabSize, labels: c.NumLabels, eps: c.LayerNormEps, tied: c.TieWordEmbeddings, word: enc.word}, &info); err != nil {
		return nil, Info{}, err
	}
	// The task models have no pooler: a file's pooler.* is unused
	// (reported), as transformers ignores it.
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

func (m *roberta) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	x, out, err := m.enc.runWithHead(ctx, ids, rc)
	if err != nil {
		return nil, err
	}
	return m.outputs(out, x, len(ids), m.enc.hidden, rc), nil
}
