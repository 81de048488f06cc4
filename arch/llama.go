package arch

import (
	"encoding/json"
	"fmt"
	"strings"
)

func init() {
	register(&Family{Name: "llama", ModelTypes: []string{"llama", "mistral", "qwen2"},
		// Not Qwen2Moe* (qwen2moe.go) nor the multimodal Qwen2 classes.
		ClassPrefixes: []string{"Llama", "Mistral", "Qwen2For", "Qwen2Model"},
		Buffers:       []string{"rotary_emb.inv_freq"}, Parse: parseLlama})
}

// LlamaConfig holds the fields of transformers' LlamaConfig (and of the
// Mistral and Qwen2 configs, which share them) that hubmirror uses.
type LlamaConfig struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	NumKeyValueHeads      int     `json:"num_key_value_heads"` // defaults to NumAttentionHeads
	HeadDim               int     `json:"head_dim"`            // defaults to HiddenSize/NumAttentionHeads
	HiddenAct             string  `json:"hidden_act"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	RMSNormEps            float64 `json:"rms_norm_eps"`
	RopeTheta             float64 `json:"rope_theta"`
	TieWordEmbeddings     bool    `json:"tie_word_embeddings"`
	AttentionBias         bool    `json:"attention_bias"`
	// SlidingWindow is Mistral's attention window; 0 for none.
	SlidingWindow int `json:"sliding_window"`
}

// Llama returns the Llama-family view of the config (Llama, Mistral,
// Qwen2), nil for another family.
func (c *Config) Llama() *LlamaConfig {
	l, _ := c.Params.(*LlamaConfig)
	return l
}

func parseLlama(c *Config, raw []byte) (Params, error) {
	l := &LlamaConfig{HiddenAct: "silu", RMSNormEps: 1e-6, RopeTheta: 10000, MaxPositionEmbeddings: 2048,
		// Without the field, only configs of no model type tie (transformers' default).
		TieWordEmbeddings: c.ModelType != "llama" && c.ModelType != "mistral" && c.ModelType != "qwen2"}
	if c.ModelType == "qwen2" {
		l.AttentionBias = true // Qwen2 always has q/k/v biases
	}
	if err := l.parse(c, raw, "llama", 0); err != nil {
		return nil, err
	}
	return l, nil
}

// parse reads raw over the defaults already in l and checks the values, for
// the Llama family and the families built on its config (Qwen3). A head_dim
// absent from config.json is defaultHeadDim, or hidden_size /
// num_attention_heads when that is 0.
func (l *LlamaConfig) parse(c *Config, raw []byte, family string, defaultHeadDim int) error {
	if err := json.Unmarshal(raw, l); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, family, err)
	}
	if !present(c.Raw, "rope_theta") {
		rp, err := RopeParameters(c)
		if err != nil {
			return err
		}
		if v, ok := rp["full_attention"]; ok { // one entry per layer type (Gemma 3)
			rp = nil
			if err := json.Unmarshal(v, &rp); err != nil {
				return fmt.Errorf("%w: %s: rope_parameters.full_attention: %v", ErrConfig, family, err)
			}
		}
		if v, ok := rp["rope_theta"]; ok {
			if err := json.Unmarshal(v, &l.RopeTheta); err != nil {
				return fmt.Errorf("%w: %s: rope_parameters.rope_theta: %v", ErrConfig, family, err)
			}
		}
	}
	k := checker{family: family}
	k.size("vocab_size", l.VocabSize)
	k.size("hidden_size", l.HiddenSize)
	k.size("intermediate_size", l.IntermediateSize)
	k.layers("num_hidden_layers", l.NumHiddenLayers)
	k.size("num_attention_heads", l.NumAttentionHeads)
	if present(c.Raw, "num_key_value_heads") {
		k.size("num_key_value_heads", l.NumKeyValueHeads)
	} else {
		l.NumKeyValueHeads = l.NumAttentionHeads
	}
	switch {
	case present(c.Raw, "head_dim"):
		k.size("head_dim", l.HeadDim)
	case defaultHeadDim > 0:
		l.HeadDim = defaultHeadDim
	default:
		k.divides("hidden_size", l.HiddenSize, "num_attention_heads", l.NumAttentionHeads)
		if l.NumAttentionHeads > 0 {
			l.HeadDim = l.HiddenSize / l.NumAttentionHeads
		}
	}
	k.divides("num_attention_heads", l.NumAttentionHeads, "num_key_value_heads", l.NumKeyValueHeads)
	k.size("max_position_embeddings", l.MaxPositionEmbeddings)
	k.positiveFloat("rms_norm_eps", l.RMSNormEps)
	k.positiveFloat("rope_theta", l.RopeTheta)
	k.nonNegative("sliding_window", l.SlidingWindow)
	return k.err
}

// RopeParameters returns config.json's rope_parameters, where transformers
// 5 writes what rope_theta and rope_scaling held (for Gemma 3, one such
// object per layer type: full_attention, sliding_attention); nil when
// absent.
func RopeParameters(c *Config) (map[string]json.RawMessage, error) {
	if !present(c.Raw, "rope_parameters") {
		return nil, nil
	}
	var rp map[string]json.RawMessage
	if err := json.Unmarshal(c.Raw["rope_parameters"], &rp); err != nil {
		return nil, fmt.Errorf("%w: rope_parameters: %v", ErrConfig, err)
	}
	return rp, nil
}

// Tensor names of Llama-family checkpoints, relative to the base model
// (LlamaForCausalLM puts it under "model.", LlamaModel has no prefix).
// Module names have no .weight or .bias.
const (
	LlamaEmbeddings        = "embed_tokens"
	LlamaInputNorm         = "input_layernorm"
	LlamaPostAttentionNorm = "post_attention_layernorm"
	LlamaQuery             = "self_attn.q_proj"
	LlamaKey               = "self_attn.k_proj"
	LlamaValue             = "self_attn.v_proj"
	LlamaAttentionOutput   = "self_attn.o_proj"
	LlamaGate              = "mlp.gate_proj"
	LlamaUp                = "mlp.up_proj"
	LlamaDown              = "mlp.down_proj"
	LlamaFinalNorm         = "norm"
	// LlamaLMHead is the causal LM's head (absolute).
	LlamaLMHead = "lm_head"
)

// LlamaLayer is the prefix of layer i's tensors.
func LlamaLayer(i int) string { return fmt.Sprintf("layers.%d.", i) }

// Sizes implements Params.
func (l *LlamaConfig) Sizes() Sizes {
	return Sizes{VocabSize: l.VocabSize, HiddenSize: l.HiddenSize, Layers: l.NumHiddenLayers,
		Heads: l.NumAttentionHeads, KVHeads: l.NumKeyValueHeads, HeadDim: l.HeadDim, Intermediate: l.IntermediateSize,
		MaxPositions: l.MaxPositionEmbeddings, TieWordEmbeddings: l.TieWordEmbeddings}
}

// Layout implements Params.
func (l *LlamaConfig) Layout() Layout {
	return Layout{Prefixes: []string{"model.", ""}, Embedding: LlamaEmbeddings + ".weight",
		LMHead: LlamaLMHead + ".weight", Layer: LlamaLayer}
}

// Blocks implements Params. Llama-family layers share one head count.
func (l *LlamaConfig) Blocks() Blocks {
	s := l.Sizes()
	return Blocks{Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim, Hidden: s.HiddenSize,
		Intermediate: s.Intermediate, HeadsField: "num_attention_heads", KVHeadsField: "num_key_value_heads",
		HeadDimField: "head_dim", IntermediateField: "intermediate_size",
		Query: []Slice{{LlamaQuery + ".weight", 0, 0}, {LlamaQuery + ".bias", 0, 0}},
		KV: []Slice{{LlamaKey + ".weight", 0, 0}, {LlamaKey + ".bias", 0, 0},
			{LlamaValue + ".weight", 0, 0}, {LlamaValue + ".bias", 0, 0}},
		Out:  []Slice{{LlamaAttentionOutput + ".weight", 1, 0}},
		Up:   []Slice{{LlamaGate + ".weight", 0, 0}, {LlamaUp + ".weight", 0, 0}},
		Down: []Slice{{LlamaDown + ".weight", 1, 0}},
	}
}

// Decoder returns the Llama fields of the config: those of the Llama
// family itself and of every family built on its config (Qwen3, Gemma,
// the MoE families), which embed LlamaConfig.
func (l *LlamaConfig) Decoder() *LlamaConfig { return l }

// Conv1D implements Params: the Llama family has none.
func (l *LlamaConfig) Conv1D(string) bool { return false }

// RotaryHeads returns, for a q or k projection (weight or bias), the number
// of heads its rows split into, whose halves the rotary embedding pairs:
// num_attention_heads for q, num_key_value_heads for k; 0 for any other
// tensor. Converters between Hugging Face's rotary layout and Meta's or
// ggml's interleaved one permute exactly these.
func (l *LlamaConfig) RotaryHeads(name string) int {
	for _, s := range []string{".weight", ".bias"} {
		switch {
		case strings.HasSuffix(name, "."+LlamaQuery+s):
			return l.NumAttentionHeads
		case strings.HasSuffix(name, "."+LlamaKey+s):
			return l.NumKeyValueHeads
		}
	}
	return 0
}
