package arch

import (
	"encoding/json"
	"fmt"
	"strings"
)

func init() {
	register(&Family{Name: "modernbert", ModelTypes: []string{"modernbert"}, ClassPrefixes: []string{"ModernBert"},
		Buffers: []string{"rotary_emb.inv_freq"}, Role: modernbertRole, Parse: parseModernBert})
}

// modernbertRole: the task models' heads (ModernBertPredictionHead under
// head., the masked LM's decoder) sit at the top level beside the
// classifier.
func modernbertRole(name string) (Role, bool) {
	switch {
	case name == ModernBertDecoder+".weight" || name == ModernBertDecoder+".bias",
		strings.HasPrefix(name, ModernBertHeadDense+"."), strings.HasPrefix(name, ModernBertHeadNorm+"."):
		return RoleHead, true
	}
	return "", false
}

// ModernBertConfig holds the fields of transformers' ModernBertConfig that
// hubmirror uses. ModernBERT is a pre-LN encoder without position table:
// rotary embeddings with one base for the global layers and another for
// the local (sliding-window) ones, a fused Wqkv, a GeGLU MLP (Wi holds the
// input and the gate), LayerNorms and Linears without biases unless the
// flags say so, a LayerNorm after the token embedding and after the last
// layer, and none before the first layer's attention.
type ModernBertConfig struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	HiddenActivation      string  `json:"hidden_activation"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	NormEps               float64 `json:"norm_eps"`
	NormBias              bool    `json:"norm_bias"`
	AttentionBias         bool    `json:"attention_bias"`
	MLPBias               bool    `json:"mlp_bias"`
	// LocalAttention is the window of the local layers: a query sees the
	// keys at most LocalAttention/2 positions before or after it.
	LocalAttention         int     `json:"local_attention"`
	GlobalAttnEveryNLayers int     `json:"global_attn_every_n_layers"`
	GlobalRopeTheta        float64 `json:"global_rope_theta"`
	LocalRopeTheta         float64 `json:"local_rope_theta"`
	// The masked-LM and classification heads: ModernBertPredictionHead's
	// dense (ClassifierBias) and activation, the decoder's bias.
	ClassifierBias       bool   `json:"classifier_bias"`
	ClassifierActivation string `json:"classifier_activation"`
	DecoderBias          bool   `json:"decoder_bias"`
	// TieWordEmbeddings: ModernBertForMaskedLM's decoder is the token
	// embedding (transformers' default, true).
	TieWordEmbeddings bool `json:"tie_word_embeddings"`
	// ClassifierPooling is what ModernBertForSequenceClassification's head
	// reads: "cls" the first token, "mean" the mean over the tokens.
	ClassifierPooling string `json:"classifier_pooling"`
	// NumLabels is the size of a sequence-classification head: num_labels,
	// or the length of id2label; 0 when the config names none.
	NumLabels int `json:"-"`

	// Local reports, per layer, a sliding-window layer (transformers:
	// layer i % global_attn_every_n_layers != 0).
	Local []bool `json:"-"`
	// RopeTheta is each layer's rotary base: by its layer type
	// (layer_types, by default the pattern of Local), rope_parameters'
	// rope_theta for that type, else global_rope_theta or
	// local_rope_theta.
	RopeTheta []float64 `json:"-"`
	// RopeType is each layer's rope_parameters rope_type ("default"
	// without one).
	RopeType []string `json:"-"`
}

// ModernBert returns the ModernBERT view of the config, nil for another
// family.
func (c *Config) ModernBert() *ModernBertConfig {
	m, _ := c.Params.(*ModernBertConfig)
	return m
}

func parseModernBert(c *Config, raw []byte) (Params, error) {
	m := &ModernBertConfig{VocabSize: 50368, HiddenSize: 768, IntermediateSize: 1152, NumHiddenLayers: 22,
		NumAttentionHeads: 12, HiddenActivation: "gelu", MaxPositionEmbeddings: 8192, NormEps: 1e-5,
		LocalAttention: 128, GlobalAttnEveryNLayers: 3, GlobalRopeTheta: 160000, LocalRopeTheta: 10000,
		ClassifierActivation: "gelu", DecoderBias: true, TieWordEmbeddings: true, ClassifierPooling: "cls"}
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("%w: modernbert: %v", ErrConfig, err)
	}
	var f struct {
		LayerTypes []string `json:"layer_types"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: modernbert: %v", ErrConfig, err)
	}
	m.NumLabels = numLabels(c.Raw)
	k := checker{family: "modernbert"}
	if m.ClassifierPooling != "cls" && m.ClassifierPooling != "mean" {
		k.fail("classifier_pooling %q (want cls or mean)", m.ClassifierPooling)
	}
	k.size("vocab_size", m.VocabSize)
	k.size("hidden_size", m.HiddenSize)
	k.size("intermediate_size", m.IntermediateSize)
	k.layers("num_hidden_layers", m.NumHiddenLayers)
	k.size("num_attention_heads", m.NumAttentionHeads)
	k.size("max_position_embeddings", m.MaxPositionEmbeddings)
	k.positiveFloat("norm_eps", m.NormEps)
	k.size("local_attention", m.LocalAttention)
	k.size("global_attn_every_n_layers", m.GlobalAttnEveryNLayers)
	k.positiveFloat("global_rope_theta", m.GlobalRopeTheta)
	k.positiveFloat("local_rope_theta", m.LocalRopeTheta)
	k.divides("hidden_size", m.HiddenSize, "num_attention_heads", m.NumAttentionHeads)
	if m.NumAttentionHeads > 0 && m.HiddenSize%m.NumAttentionHeads == 0 && (m.HiddenSize/m.NumAttentionHeads)%2 != 0 {
		k.fail("the head size hidden_size/num_attention_heads = %d is odd, which rotary embeddings cannot rotate",
			m.HiddenSize/m.NumAttentionHeads)
	}
	if k.err != nil {
		return nil, k.err
	}
	n := m.NumHiddenLayers
	m.Local = make([]bool, n)
	types := make([]string, n)
	for i := range n {
		m.Local[i] = i%m.GlobalAttnEveryNLayers != 0
		types[i] = "full_attention"
		if m.Local[i] {
			types[i] = "sliding_attention"
		}
	}
	if f.LayerTypes != nil {
		if len(f.LayerTypes) != n {
			return nil, fmt.Errorf("%w: modernbert: layer_types has %d entries for %d layers", ErrConfig, len(f.LayerTypes), n)
		}
		for i, t := range f.LayerTypes {
			if t != "full_attention" && t != "sliding_attention" {
				return nil, fmt.Errorf("%w: modernbert: layer_types[%d] %q (want full_attention or sliding_attention)", ErrConfig, i, t)
			}
		}
		types = f.LayerTypes
	}
	theta := map[string]float64{"full_attention": m.GlobalRopeTheta, "sliding_attention": m.LocalRopeTheta}
	ropeType := map[string]string{"full_attention": "default", "sliding_attention": "default"}
	rp, err := RopeParameters(c)
	if err != nil {
		return nil, err
	}
	for typ, v := range rp {
		if _, ok := theta[typ]; !ok || string(v) == "null" {
			continue
		}
		var p struct {
			RopeType  *string  `json:"rope_type"`
			RopeTheta *float64 `json:"rope_theta"`
		}
		if err := json.Unmarshal(v, &p); err != nil {
			return nil, fmt.Errorf("%w: modernbert: rope_parameters.%s: %v", ErrConfig, typ, err)
		}
		if p.RopeTheta != nil {
			if !(*p.RopeTheta > 0) {
				return nil, fmt.Errorf("%w: modernbert: rope_parameters.%s.rope_theta must be a positive finite number, got %v", ErrConfig, typ, *p.RopeTheta)
			}
			theta[typ] = *p.RopeTheta
		}
		if p.RopeType != nil {
			ropeType[typ] = *p.RopeType
		}
	}
	m.RopeTheta = make([]float64, n)
	m.RopeType = make([]string, n)
	for i, t := range types {
		m.RopeTheta[i], m.RopeType[i] = theta[t], ropeType[t]
	}
	return m, nil
}

// Tensor names of ModernBERT checkpoints, relative to the base model
// (ModernBertModel's carry no prefix, the task models put them under
// "model."); the heads are absolute. Module names have no .weight or
// .bias.
const (
	ModernBertEmbeddings     = "embeddings.tok_embeddings"
	ModernBertEmbeddingsNorm = "embeddings.norm"
	ModernBertAttnNorm       = "attn_norm" // absent from layer 0 (nn.Identity)
	ModernBertQKV            = "attn.Wqkv"
	ModernBertAttnOutput     = "attn.Wo"
	ModernBertMLPNorm        = "mlp_norm"
	ModernBertMLPIn          = "mlp.Wi" // the input half, then the gate half
	ModernBertMLPOut         = "mlp.Wo"
	ModernBertFinalNorm      = "final_norm"
	// ModernBertForMaskedLM's head: ModernBertPredictionHead (dense,
	// activation, norm), then the decoder (tied to the token embedding).
	ModernBertHeadDense = "head.dense"
	ModernBertHeadNorm  = "head.norm"
	ModernBertDecoder   = "decoder"
	// ModernBertForSequenceClassification's head: the pooled hidden state
	// (ClassifierPooling) through the same prediction head, then the
	// classifier.
	ModernBertClassifier = "classifier"
)

// ModernBertLayer is the prefix of layer i's tensors.
func ModernBertLayer(i int) string { return fmt.Sprintf("layers.%d.", i) }

// Sizes implements Params.
func (m *ModernBertConfig) Sizes() Sizes {
	return Sizes{VocabSize: m.VocabSize, HiddenSize: m.HiddenSize, Layers: m.NumHiddenLayers,
		Heads: m.NumAttentionHeads, KVHeads: m.NumAttentionHeads, HeadDim: m.HiddenSize / m.NumAttentionHeads,
		Intermediate: m.IntermediateSize, MaxPositions: m.MaxPositionEmbeddings, TieWordEmbeddings: m.TieWordEmbeddings}
}

// Layout implements Params.
func (m *ModernBertConfig) Layout() Layout {
	return Layout{Prefixes: []string{"", "model."}, Embedding: ModernBertEmbeddings + ".weight",
		LMHead: ModernBertDecoder + ".weight", Layer: ModernBertLayer}
}

// Blocks implements Params: FFN neurons are cut in both halves of Wi (input
// and gate) and in the inputs of mlp.Wo. Heads are not: ModernBERT's head
// size is hidden_size / num_attention_heads and attn.Wo takes hidden_size
// inputs, so its config cannot describe fewer heads.
func (m *ModernBertConfig) Blocks() Blocks {
	s := m.Sizes()
	w, b := ModernBertQKV+".weight", ModernBertQKV+".bias"
	wi, bi := ModernBertMLPIn+".weight", ModernBertMLPIn+".bias"
	return Blocks{Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim, Hidden: s.HiddenSize,
		Intermediate: s.Intermediate, IntermediateField: "intermediate_size",
		NoHeadPruning: "ModernBERT's head size is hidden_size / num_attention_heads and attn.Wo takes hidden_size inputs, " +
			"so its config cannot describe layers with fewer heads",
		Query: []Slice{{w, 0, 0}, {b, 0, 0}},
		KV:    []Slice{{w, 0, 1}, {b, 0, 1}, {w, 0, 2}, {b, 0, 2}},
		Out:   []Slice{{ModernBertAttnOutput + ".weight", 1, 0}},
		Up:    []Slice{{wi, 0, 0}, {bi, 0, 0}, {wi, 0, 1}, {bi, 0, 1}},
		Down:  []Slice{{ModernBertMLPOut + ".weight", 1, 0}},
	}
}

// Conv1D implements Params: ModernBERT has none.
func (m *ModernBertConfig) Conv1D(string) bool { return false }
