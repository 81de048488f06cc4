package arch

import (
	"encoding/json"
	"fmt"
)

// DecoderClassifier is the head of the decoder families'
// *ForSequenceClassification (transformers' GenericForSequenceClassification
// and GPT2ForSequenceClassification): a Linear without bias from the hidden
// size to num_labels, at the top level, applied to the hidden state of the
// last token that is not pad_token_id.
const DecoderClassifier = "score"

// SequenceClassification is what a decoder's sequence-classification head
// reads from config.json.
type SequenceClassification struct {
	// NumLabels is num_labels, or the length of id2label; 0 when the
	// config names none (the head's rows then say).
	NumLabels int
	// PadTokenID is pad_token_id; HasPad is false when the config has none
	// (absent or null): the head then reads the last token.
	PadTokenID int
	HasPad     bool
}

// SequenceClassification reads num_labels and pad_token_id. A
// pad_token_id that is not an integer is an ErrConfig error.
func (c *Config) SequenceClassification() (SequenceClassification, error) {
	s := SequenceClassification{NumLabels: numLabels(c.Raw)}
	if !present(c.Raw, "pad_token_id") {
		return s, nil
	}
	if err := json.Unmarshal(c.Raw["pad_token_id"], &s.PadTokenID); err != nil {
		return s, fmt.Errorf("%w: pad_token_id is %s, not an integer", ErrConfig, c.Raw["pad_token_id"])
	}
	s.HasPad = true
	return s, nil
}
