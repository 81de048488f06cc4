package forward

import (
	"fmt"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// seqClassifier is the head of the decoder families'
// *ForSequenceClassification (Llama, Mistral, Qwen2, Qwen3, Gemma 1-3 text,
// GPT-2): score, a Linear without bias, applied to the final hidden state
// of the last token that is not the pad token, which gives logits
// [1, num_labels].
type seqClassifier struct {
	w *kernels.Weight
	// pad is pad_token_id; without one (hasPad false) the head reads the
	// last token.
	pad    int
	hasPad bool
}

// sequenceClassification reports whether class is a decoder's sequence
// classification head.
func sequenceClassification(class string) bool {
	return strings.HasSuffix(class, "ForSequenceClassification")
}

// loadSeqClassifier loads the score head of a decoder of the given hidden
// size and returns it with its number of labels.
func loadSeqClassifier(s *tensorSet, cfg *arch.Config, class string, hidden int) (*seqClassifier, int, error) {
	sc, err := cfg.SequenceClassification()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", class, err)
	}
	name := arch.DecoderClassifier + ".weight"
	t, ok := s.lookup(name, true)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s: missing tensor %q", ErrWeights, class, name)
	}
	if len(t.Shape) != 2 || t.Shape[0] <= 0 {
		return nil, 0, fmt.Errorf("%w: tensor %q has shape %v, want [num_labels, %d]", ErrWeights, name, t.Shape, hidden)
	}
	labels := int(t.Shape[0])
	if sc.NumLabels > 0 && sc.NumLabels != labels {
		return nil, 0, fmt.Errorf("%w: tensor %q has %d rows, config.json names %d labels", ErrWeights, name, labels, sc.NumLabels)
	}
	if _, ok := s.lookup(arch.DecoderClassifier+".bias", true); ok {
		return nil, 0, fmt.Errorf("%w: %s: tensor %q: the score head of transformers' %s has no bias", ErrWeights, class, arch.DecoderClassifier+".bias", class)
	}
	w, err := s.matrix(arch.DecoderClassifier, labels, hidden, false, true)
	if err != nil {
		return nil, 0, err
	}
	return &seqClassifier{w: w, pad: sc.PadTokenID, hasPad: sc.HasPad}, labels, nil
}

// position is the token whose hidden state the head reads, as transformers
// picks it: the rightmost id that is not pad_token_id (0 when all are),
// the last one without a pad token.
func (h *seqClassifier) position(ids []int) int {
	if !h.hasPad {
		return len(ids) - 1
	}
	for t := len(ids) - 1; t > 0; t-- {
		if ids[t] != h.pad {
			return t
		}
	}
	return 0
}

// apply computes the logits [1, num_labels] from the final hidden states x
// [len(ids), hidden].
func (h *seqClassifier) apply(x []float32, ids []int, hidden int, rc runConfig) Output {
	t := h.position(ids)
	logits := make([]float32, h.w.Out)
	rc.linear(logits, x[t*hidden:(t+1)*hidden], 1, h.w, nil)
	return Output{Name: OutputLogits, Shape: []int{1, h.w.Out}, Data: logits}
}

// padInfo is the pad token a sequence-classification head skips, for
// Info.PadTokenID.
func (h *seqClassifier) padInfo() *int {
	if h == nil || !h.hasPad {
		return nil
	}
	p := h.pad
	return &p
}
