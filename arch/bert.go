package arch

import (
	"encoding/json"
	"fmt"
	"strings"
)

func init() {
	register(&Family{Name: "bert", ModelTypes: []string{"bert"}, ClassPrefixes: []string{"Bert"},
		Buffers: []string{"position_ids", "token_type_ids"}, Role: bertRole, Parse: parseBert})
}

// bertRole: BertForMaskedLM's and BertForPreTraining's heads live under
// cls. (cls.predictions.transform.dense.weight is a Linear layer of the
// head, not of the body); TensorFlow-era checkpoints name LayerNorm
// parameters gamma and beta.
func bertRole(name string) (Role, bool) {
	switch {
	case hasPart(name, "cls."):
		return RoleHead, true
	case strings.HasSuffix(name, ".gamma") || strings.HasSuffix(name, ".beta"):
		return RoleNorm, true
	}
	return "", false
}

// BertConfig holds the fields of transformers' BertConfig that hubmirror
// uses.
type BertConfig struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	IntermediateSize      int     `json:"intermediate_size"`
	HiddenAct             string  `json:"hidden_act"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	TypeVocabSize         int     `json:"type_vocab_size"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	PositionEmbeddingType string  `json:"position_embedding_type"`
	// NumLabels is the size of a sequence-classification head: num_labels, or
	// the length of id2label; 0 when the config names none.
	NumLabels int `json:"-"`
}

// Bert returns the BERT view of the config, nil for another family.
func (c *Config) Bert() *BertConfig {
	b, _ := c.Params.(*BertConfig)
	return b
}

func parseBert(c *Config, raw []byte) (Params, error) {
	b, err := parseBertFields(c, raw, "bert")
	if err != nil {
		return nil, err
	}
	return b, nil
}

// parseBertFields reads and checks the fields BERT's config shares with the
// families built on its encoder (RoBERTa, XLM-RoBERTa, CamemBERT), with
// transformers' defaults; family names the family in errors.
func parseBertFields(c *Config, raw []byte, family string) (*BertConfig, error) {
	b := &BertConfig{HiddenAct: "gelu", LayerNormEps: 1e-12, TypeVocabSize: 2, PositionEmbeddingType: "absolute"}
	if err := json.Unmarshal(raw, b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, family, err)
	}
	b.NumLabels = numLabels(c.Raw)
	k := checker{family: family}
	k.size("vocab_size", b.VocabSize)
	k.size("hidden_size", b.HiddenSize)
	k.layers("num_hidden_layers", b.NumHiddenLayers)
	k.size("num_attention_heads", b.NumAttentionHeads)
	k.size("intermediate_size", b.IntermediateSize)
	k.size("max_position_embeddings", b.MaxPositionEmbeddings)
	k.nonNegative("type_vocab_size", b.TypeVocabSize)
	k.positiveFloat("layer_norm_eps", b.LayerNormEps)
	k.divides("hidden_size", b.HiddenSize, "num_attention_heads", b.NumAttentionHeads)
	if k.err != nil {
		return nil, k.err
	}
	return b, nil
}

// Tensor names of BERT checkpoints, relative to the base model (BertModel's
// tensors carry no prefix; the task models put them under "bert." and their
// heads, classifier.* and cls.*, at the top level). Module names have no
// .weight or .bias.
const (
	BertWordEmbeddings      = "embeddings.word_embeddings"
	BertPositionEmbeddings  = "embeddings.position_embeddings"
	BertTokenTypeEmbeddings = "embeddings.token_type_embeddings"
	BertEmbeddingsNorm      = "embeddings.LayerNorm"
	BertQuery               = "attention.self.query"
	BertKey                 = "attention.self.key"
	BertValue               = "attention.self.value"
	BertAttentionOutput     = "attention.output.dense"
	BertAttentionNorm       = "attention.output.LayerNorm"
	BertIntermediate        = "intermediate.dense"
	BertOutput              = "output.dense"
	BertOutputNorm          = "output.LayerNorm"
	BertPooler              = "pooler.dense"
	// BertClassifier is BertForSequenceClassification's head (absolute).
	BertClassifier = "classifier"
)

// BertLayer is the prefix of layer i's tensors.
func BertLayer(i int) string { return fmt.Sprintf("encoder.layer.%d.", i) }

// Sizes implements Params.
func (b *BertConfig) Sizes() Sizes {
	return Sizes{VocabSize: b.VocabSize, HiddenSize: b.HiddenSize, Layers: b.NumHiddenLayers,
		Heads: b.NumAttentionHeads, KVHeads: b.NumAttentionHeads, HeadDim: b.HiddenSize / b.NumAttentionHeads,
		Intermediate: b.IntermediateSize, MaxPositions: b.MaxPositionEmbeddings}
}

// Layout implements Params.
func (b *BertConfig) Layout() Layout {
	return Layout{Prefixes: []string{"", "bert."}, Embedding: BertWordEmbeddings + ".weight", Layer: BertLayer}
}

// Blocks implements Params.
func (b *BertConfig) Blocks() Blocks {
	s := b.Sizes()
	return Blocks{Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim, Hidden: s.HiddenSize,
		Intermediate: s.Intermediate, PerLayerHeads: true, IntermediateField: "intermediate_size",
		Query: []Slice{{BertQuery + ".weight", 0, 0}, {BertQuery + ".bias", 0, 0}},
		KV: []Slice{{BertKey + ".weight", 0, 0}, {BertKey + ".bias", 0, 0},
			{BertValue + ".weight", 0, 0}, {BertValue + ".bias", 0, 0}},
		Out:  []Slice{{BertAttentionOutput + ".weight", 1, 0}},
		Up:   []Slice{{BertIntermediate + ".weight", 0, 0}, {BertIntermediate + ".bias", 0, 0}},
		Down: []Slice{{BertOutput + ".weight", 1, 0}},
	}
}

// Conv1D implements Params: BERT has none.
func (b *BertConfig) Conv1D(string) bool { return false }
