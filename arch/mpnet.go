package arch

import (
	"encoding/json"
	"fmt"
	"strings"
)

func init() {
	register(&Family{Name: "mpnet", ModelTypes: []string{"mpnet"}, ClassPrefixes: []string{"MPNet"},
		Buffers: []string{"position_ids"}, Role: mpnetRole, Parse: parseMPNet})
}

// mpnetRole: the relative position bias table (a [buckets, heads]
// nn.Embedding shared by all layers) is an embedding, not a Linear layer.
func mpnetRole(name string) (Role, bool) {
	if strings.HasSuffix(name, MPNetRelativeAttentionBias+".weight") {
		return RoleEmbedding, true
	}
	return "", false
}

// MPNetConfig holds the fields of transformers' MPNetConfig that hubmirror
// uses. The layers are BERT's post-LN layers under their own attention
// names, with one relative position bias, bucketed from the distance
// between query and key, added to the attention scores of every layer.
type MPNetConfig struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	IntermediateSize      int     `json:"intermediate_size"`
	HiddenAct             string  `json:"hidden_act"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	// RelativeAttentionNumBuckets is the number of rows of the relative
	// position bias table; transformers buckets the distances into
	// MPNetBuckets of them whatever it says.
	RelativeAttentionNumBuckets int `json:"relative_attention_num_buckets"`
	// TieWordEmbeddings: MPNetForMaskedLM's decoder is the token embedding
	// (transformers' default, true).
	TieWordEmbeddings bool `json:"tie_word_embeddings"`
	// NumLabels is the size of a sequence-classification head: num_labels, or
	// the length of id2label; 0 when the config names none.
	NumLabels int `json:"-"`
}

// MPNet's fixed numbers: MPNetEmbeddings numbers positions from
// MPNetPaddingIdx+1 over the tokens that are not MPNetPaddingIdx (which
// get position MPNetPaddingIdx), whatever pad_token_id says; the encoder
// buckets relative distances into MPNetBuckets buckets (half for keys
// after the query), exact below a quarter of them, logarithmic up to
// MPNetMaxDistance.
const (
	MPNetPaddingIdx  = 1
	MPNetBuckets     = 32
	MPNetMaxDistance = 128
)

// MPNet returns the MPNet view of the config, nil for another family.
func (c *Config) MPNet() *MPNetConfig {
	m, _ := c.Params.(*MPNetConfig)
	return m
}

func parseMPNet(c *Config, raw []byte) (Params, error) {
	m := &MPNetConfig{VocabSize: 30527, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12,
		IntermediateSize: 3072, HiddenAct: "gelu", MaxPositionEmbeddings: 512, LayerNormEps: 1e-12,
		RelativeAttentionNumBuckets: 32, TieWordEmbeddings: true}
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("%w: mpnet: %v", ErrConfig, err)
	}
	m.NumLabels = numLabels(c.Raw)
	k := checker{family: "mpnet"}
	k.size("vocab_size", m.VocabSize)
	k.size("hidden_size", m.HiddenSize)
	k.layers("num_hidden_layers", m.NumHiddenLayers)
	k.size("num_attention_heads", m.NumAttentionHeads)
	k.size("intermediate_size", m.IntermediateSize)
	k.size("max_position_embeddings", m.MaxPositionEmbeddings)
	k.positiveFloat("layer_norm_eps", m.LayerNormEps)
	k.divides("hidden_size", m.HiddenSize, "num_attention_heads", m.NumAttentionHeads)
	k.size("relative_attention_num_buckets", m.RelativeAttentionNumBuckets)
	if m.RelativeAttentionNumBuckets < MPNetBuckets {
		k.fail("relative_attention_num_buckets %d is below the %d buckets transformers' MPNet looks up",
			m.RelativeAttentionNumBuckets, MPNetBuckets)
	}
	if m.MaxPositionEmbeddings <= MPNetPaddingIdx+1 {
		k.fail("max_position_embeddings %d leaves no position after the padding index %d (positions start at %d)",
			m.MaxPositionEmbeddings, MPNetPaddingIdx, MPNetPaddingIdx+1)
	}
	if MPNetPaddingIdx >= m.VocabSize {
		k.fail("vocab_size %d has no padding token %d", m.VocabSize, MPNetPaddingIdx)
	}
	if k.err != nil {
		return nil, k.err
	}
	return m, nil
}

// Tensor names of MPNet checkpoints, relative to the base model
// (MPNetModel's carry no prefix, the task models put them under "mpnet.");
// the heads are absolute. Module names have no .weight or .bias.
const (
	MPNetWordEmbeddings        = "embeddings.word_embeddings"
	MPNetPositionEmbeddings    = "embeddings.position_embeddings"
	MPNetEmbeddingsNorm        = "embeddings.LayerNorm"
	MPNetRelativeAttentionBias = "encoder.relative_attention_bias"
	MPNetQuery                 = "attention.attn.q"
	MPNetKey                   = "attention.attn.k"
	MPNetValue                 = "attention.attn.v"
	MPNetAttentionOutput       = "attention.attn.o"
	MPNetAttentionNorm         = "attention.LayerNorm"
	MPNetIntermediate          = "intermediate.dense"
	MPNetOutput                = "output.dense"
	MPNetOutputNorm            = "output.LayerNorm"
	MPNetPooler                = "pooler.dense"
	// MPNetForMaskedLM's head: dense, gelu, layer_norm, decoder (tied to
	// the token embedding) with the bias lm_head.bias, which transformers
	// ties to lm_head.decoder.bias.
	MPNetLMDense   = "lm_head.dense"
	MPNetLMNorm    = "lm_head.layer_norm"
	MPNetLMDecoder = "lm_head.decoder"
	MPNetLMBias    = "lm_head.bias"
	// MPNetForSequenceClassification's head: dense, tanh, out_proj on the
	// first token.
	MPNetClassDense   = "classifier.dense"
	MPNetClassOutProj = "classifier.out_proj"
)

// Sizes implements Params: a sequence has at most max_position_embeddings
// - 2 tokens, the positions after the padding index.
func (m *MPNetConfig) Sizes() Sizes {
	return Sizes{VocabSize: m.VocabSize, HiddenSize: m.HiddenSize, Layers: m.NumHiddenLayers,
		Heads: m.NumAttentionHeads, KVHeads: m.NumAttentionHeads, HeadDim: m.HiddenSize / m.NumAttentionHeads,
		Intermediate: m.IntermediateSize, MaxPositions: m.MaxPositionEmbeddings - MPNetPaddingIdx - 1,
		TieWordEmbeddings: m.TieWordEmbeddings}
}

// Layout implements Params.
func (m *MPNetConfig) Layout() Layout {
	return Layout{Prefixes: []string{"", "mpnet."}, Embedding: MPNetWordEmbeddings + ".weight",
		LMHead: MPNetLMDecoder + ".weight", Layer: BertLayer}
}

// Blocks implements Params. The FFN neurons are cut as BERT's; heads are
// not: the relative position bias gives every layer the same heads, and
// transformers' MPNet has no pruned_heads.
func (m *MPNetConfig) Blocks() Blocks {
	s := m.Sizes()
	return Blocks{Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim, Hidden: s.HiddenSize,
		Intermediate: s.Intermediate, IntermediateField: "intermediate_size",
		NoHeadPruning: "MPNet's relative position bias (encoder.relative_attention_bias) has one column per head, " +
			"shared by every layer, and transformers' MPNet cannot load layers with fewer heads",
		Query: []Slice{{MPNetQuery + ".weight", 0, 0}, {MPNetQuery + ".bias", 0, 0}},
		KV: []Slice{{MPNetKey + ".weight", 0, 0}, {MPNetKey + ".bias", 0, 0},
			{MPNetValue + ".weight", 0, 0}, {MPNetValue + ".bias", 0, 0}},
		Out:  []Slice{{MPNetAttentionOutput + ".weight", 1, 0}},
		Up:   []Slice{{MPNetIntermediate + ".weight", 0, 0}, {MPNetIntermediate + ".bias", 0, 0}},
		Down: []Slice{{MPNetOutput + ".weight", 1, 0}},
	}
}

// Conv1D implements Params: MPNet has none.
func (m *MPNetConfig) Conv1D(string) bool { return false }
