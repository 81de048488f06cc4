package arch

import (
	"encoding/json"
	"fmt"
	"strings"
)

func init() {
	register(&Family{Name: "distilbert", ModelTypes: []string{"distilbert"}, ClassPrefixes: []string{"DistilBert"},
		Buffers: []string{"position_ids"}, Role: distilbertRole, Parse: parseDistilbert})
}

// distilbertRole: DistilBertForMaskedLM's head (vocab_transform,
// vocab_layer_norm, vocab_projector) and DistilBertForSequenceClassification's
// pre_classifier sit at the top level beside the classifier.
func distilbertRole(name string) (Role, bool) {
	for _, p := range []string{"vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "pre_classifier."} {
		if strings.HasPrefix(name, p) {
			return RoleHead, true
		}
	}
	return "", false
}

// DistilBertConfig holds the fields of transformers' DistilBertConfig that
// hubmirror uses. Its LayerNorms all have eps 1e-12 (DistilBertEps).
type DistilBertConfig struct {
	VocabSize             int    `json:"vocab_size"`
	Dim                   int    `json:"dim"`
	NLayers               int    `json:"n_layers"`
	NHeads                int    `json:"n_heads"`
	HiddenDim             int    `json:"hidden_dim"`
	Activation            string `json:"activation"`
	MaxPositionEmbeddings int    `json:"max_position_embeddings"`
	// SinusoidalPosEmbds: the position table was filled with sines and
	// cosines instead of learned; checkpoints carry it either way, and the
	// forward pass reads it from the file.
	SinusoidalPosEmbds bool `json:"sinusoidal_pos_embds"`
	PadTokenID         int  `json:"pad_token_id"`
	// TieWordEmbeddings: DistilBertForMaskedLM's vocab_projector is the
	// token embedding (transformers' default, true).
	TieWordEmbeddings bool `json:"tie_word_embeddings"`
	// NumLabels is the size of a sequence-classification head: num_labels,
	// or the length of id2label; 0 when the config names none.
	NumLabels int `json:"-"`
}

// DistilBertEps is the eps of every DistilBERT LayerNorm (fixed in
// transformers, not in the config).
const DistilBertEps = 1e-12

// DistilBert returns the DistilBERT view of the config, nil for another
// family.
func (c *Config) DistilBert() *DistilBertConfig {
	d, _ := c.Params.(*DistilBertConfig)
	return d
}

func parseDistilbert(c *Config, raw []byte) (Params, error) {
	d := &DistilBertConfig{VocabSize: 30522, Dim: 768, NLayers: 6, NHeads: 12, HiddenDim: 3072, Activation: "gelu",
		MaxPositionEmbeddings: 512, TieWordEmbeddings: true}
	if err := json.Unmarshal(raw, d); err != nil {
		return nil, fmt.Errorf("%w: distilbert: %v", ErrConfig, err)
	}
	d.NumLabels = numLabels(c.Raw)
	k := checker{family: "distilbert"}
	k.size("vocab_size", d.VocabSize)
	k.size("dim", d.Dim)
	k.layers("n_layers", d.NLayers)
	k.size("n_heads", d.NHeads)
	k.size("hidden_dim", d.HiddenDim)
	k.size("max_position_embeddings", d.MaxPositionEmbeddings)
	k.nonNegative("pad_token_id", d.PadTokenID)
	k.divides("dim", d.Dim, "n_heads", d.NHeads)
	if k.err != nil {
		return nil, k.err
	}
	return d, nil
}

// Tensor names of DistilBERT checkpoints, relative to the base model
// (DistilBertModel's carry no prefix, the task models put them under
// "distilbert."); the heads are absolute. Module names have no .weight or
// .bias.
const (
	DistilBertWordEmbeddings     = "embeddings.word_embeddings"
	DistilBertPositionEmbeddings = "embeddings.position_embeddings"
	DistilBertEmbeddingsNorm     = "embeddings.LayerNorm"
	DistilBertQuery              = "attention.q_lin"
	DistilBertKey                = "attention.k_lin"
	DistilBertValue              = "attention.v_lin"
	DistilBertAttentionOutput    = "attention.out_lin"
	DistilBertAttentionNorm      = "sa_layer_norm"
	DistilBertFFNIn              = "ffn.lin1"
	DistilBertFFNOut             = "ffn.lin2"
	DistilBertOutputNorm         = "output_layer_norm"
	// DistilBertForMaskedLM's head.
	DistilBertVocabTransform = "vocab_transform"
	DistilBertVocabNorm      = "vocab_layer_norm"
	DistilBertVocabProjector = "vocab_projector"
	// DistilBertForSequenceClassification's head.
	DistilBertPreClassifier = "pre_classifier"
	DistilBertClassifier    = "classifier"
)

// DistilBertLayer is the prefix of layer i's tensors.
func DistilBertLayer(i int) string { return fmt.Sprintf("transformer.layer.%d.", i) }

// Sizes implements Params.
func (d *DistilBertConfig) Sizes() Sizes {
	return Sizes{VocabSize: d.VocabSize, HiddenSize: d.Dim, Layers: d.NLayers, Heads: d.NHeads, KVHeads: d.NHeads,
		HeadDim: d.Dim / d.NHeads, Intermediate: d.HiddenDim, MaxPositions: d.MaxPositionEmbeddings,
		TieWordEmbeddings: d.TieWordEmbeddings}
}

// Layout implements Params.
func (d *DistilBertConfig) Layout() Layout {
	return Layout{Prefixes: []string{"", "distilbert."}, Embedding: DistilBertWordEmbeddings + ".weight",
		LMHead: DistilBertVocabProjector + ".weight", Layer: DistilBertLayer}
}

// Blocks implements Params: transformers' DistilBERT prunes heads per layer
// (config.json's pruned_heads), as BERT does.
func (d *DistilBertConfig) Blocks() Blocks {
	s := d.Sizes()
	return Blocks{Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim, Hidden: s.HiddenSize,
		Intermediate: s.Intermediate, PerLayerHeads: true, IntermediateField: "hidden_dim",
		Query: []Slice{{DistilBertQuery + ".weight", 0, 0}, {DistilBertQuery + ".bias", 0, 0}},
		KV: []Slice{{DistilBertKey + ".weight", 0, 0}, {DistilBertKey + ".bias", 0, 0},
			{DistilBertValue + ".weight", 0, 0}, {DistilBertValue + ".bias", 0, 0}},
		Out:  []Slice{{DistilBertAttentionOutput + ".weight", 1, 0}},
		Up:   []Slice{{DistilBertFFNIn + ".weight", 0, 0}, {DistilBertFFNIn + ".bias", 0, 0}},
		Down: []Slice{{DistilBertFFNOut + ".weight", 1, 0}},
	}
}

// Conv1D implements Params: DistilBERT has none.
func (d *DistilBertConfig) Conv1D(string) bool { return false }
