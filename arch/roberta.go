package arch

import (
	"encoding/json"
	"fmt"
)

func init() {
	register(&Family{Name: "roberta", ModelTypes: []string{"roberta", "xlm-roberta", "camembert"},
		ClassPrefixes: []string{"Roberta", "XLMRoberta", "Camembert"},
		Buffers:       []string{"position_ids", "token_type_ids"}, Parse: parseRoberta})
}

// RobertaConfig holds the fields of transformers' RobertaConfig (and
// XLMRobertaConfig, CamembertConfig, which are the same) that hubmirror
// uses. The encoder is BERT's; the embeddings number positions from
// PadTokenID+1 and give padding tokens the position PadTokenID.
type RobertaConfig struct {
	BertConfig
	PadTokenID int `json:"pad_token_id"`
	// TieWordEmbeddings: the masked-LM head's decoder is the token
	// embedding (transformers' default, true).
	TieWordEmbeddings bool `json:"tie_word_embeddings"`
}

// Roberta returns the RoBERTa view of the config (XLM-RoBERTa and
// CamemBERT too), nil for another family.
func (c *Config) Roberta() *RobertaConfig {
	r, _ := c.Params.(*RobertaConfig)
	return r
}

func parseRoberta(c *Config, raw []byte) (Params, error) {
	b, err := parseBertFields(c, raw, "roberta")
	if err != nil {
		return nil, err
	}
	r := &RobertaConfig{BertConfig: *b, PadTokenID: 1, TieWordEmbeddings: true}
	var extra struct {
		PadTokenID        *int  `json:"pad_token_id"`
		TieWordEmbeddings *bool `json:"tie_word_embeddings"`
	}
	if err := json.Unmarshal(raw, &extra); err != nil {
		return nil, fmt.Errorf("%w: roberta: %v", ErrConfig, err)
	}
	if extra.PadTokenID != nil {
		r.PadTokenID = *extra.PadTokenID
	}
	if extra.TieWordEmbeddings != nil {
		r.TieWordEmbeddings = *extra.TieWordEmbeddings
	}
	k := checker{family: "roberta"}
	k.nonNegative("pad_token_id", r.PadTokenID)
	if r.PadTokenID >= r.VocabSize {
		k.fail("pad_token_id %d is outside vocab_size %d", r.PadTokenID, r.VocabSize)
	}
	if r.MaxPositionEmbeddings <= r.PadTokenID+1 {
		k.fail("max_position_embeddings %d leaves no position after pad_token_id %d (positions start at pad_token_id+1)",
			r.MaxPositionEmbeddings, r.PadTokenID)
	}
	if k.err != nil {
		return nil, k.err
	}
	return r, nil
}

// Tensor names of the RoBERTa heads (absolute): RobertaForMaskedLM's
// lm_head (dense, gelu, layer_norm, decoder tied to the token embedding,
// with the bias lm_head.bias, which transformers ties to
// lm_head.decoder.bias) and RobertaForSequenceClassification's
// classifier (dense, tanh, out_proj) on the first token.
const (
	RobertaLMDense      = "lm_head.dense"
	RobertaLMNorm       = "lm_head.layer_norm"
	RobertaLMDecoder    = "lm_head.decoder"
	RobertaLMBias       = "lm_head.bias"
	RobertaClassDense   = "classifier.dense"
	RobertaClassOutProj = "classifier.out_proj"
)

// Sizes implements Params: a sequence has at most max_position_embeddings
// - pad_token_id - 1 tokens, the positions after the padding index.
func (r *RobertaConfig) Sizes() Sizes {
	s := r.BertConfig.Sizes()
	s.MaxPositions = r.MaxPositionEmbeddings - r.PadTokenID - 1
	s.TieWordEmbeddings = r.TieWordEmbeddings
	return s
}

// Layout implements Params: the task models (RobertaForMaskedLM,
// XLMRobertaForSequenceClassification, ...) keep the encoder under
// "roberta.".
func (r *RobertaConfig) Layout() Layout {
	return Layout{Prefixes: []string{"", "roberta."}, Embedding: BertWordEmbeddings + ".weight",
		LMHead: RobertaLMDecoder + ".weight", Layer: BertLayer}
}
