package formats

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Config is a model's config.json: the fields every architecture has, the
// whole document for anything else, and a typed view for the families the
// forward pass runs (exactly one of Bert, GPT2, Llama is set for those).
type Config struct {
	ModelType     string
	Architectures []string
	// TorchDType is the "torch_dtype" (or "dtype") field, "" when absent.
	TorchDType string
	// Raw holds every top-level field as written.
	Raw map[string]json.RawMessage

	Bert  *BertConfig
	GPT2  *GPT2Config
	Llama *LlamaConfig
}

// Family names the architecture family the forward pass knows, or "" for a
// generic config.
func (c *Config) Family() string {
	switch {
	case c.Bert != nil:
		return "bert"
	case c.GPT2 != nil:
		return "gpt2"
	case c.Llama != nil:
		return "llama"
	}
	return ""
}

// Architecture is the first entry of "architectures", or the model type.
func (c *Config) Architecture() string {
	if len(c.Architectures) > 0 {
		return c.Architectures[0]
	}
	return c.ModelType
}

// BertConfig holds the fields of transformers' BertConfig that the forward
// pass uses.
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

// GPT2Config holds the fields of transformers' GPT2Config that the forward
// pass uses.
type GPT2Config struct {
	VocabSize                  int     `json:"vocab_size"`
	NPositions                 int     `json:"n_positions"`
	NEmbd                      int     `json:"n_embd"`
	NLayer                     int     `json:"n_layer"`
	NHead                      int     `json:"n_head"`
	NInner                     int     `json:"n_inner"` // 0 means 4*NEmbd
	ActivationFunction         string  `json:"activation_function"`
	LayerNormEpsilon           float64 `json:"layer_norm_epsilon"`
	ScaleAttnWeights           bool    `json:"scale_attn_weights"`
	ScaleAttnByInverseLayerIdx bool    `json:"scale_attn_by_inverse_layer_idx"`
	TieWordEmbeddings          bool    `json:"tie_word_embeddings"`
}

// LlamaConfig holds the fields of transformers' LlamaConfig (and of the
// Mistral and Qwen2 configs, which share them) that the forward pass uses.
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

// PrunedHeads returns config.json's pruned_heads (layer -> original head
// numbers removed), which BERT and GPT-2 configs carry when heads were
// pruned: transformers builds those layers with fewer heads. Empty when
// absent.
func (c *Config) PrunedHeads() (map[int][]int, error) {
	out := map[int][]int{}
	raw, ok := c.Raw["pruned_heads"]
	if !ok {
		return out, nil
	}
	var m map[string][]int
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: pruned_heads: %v", ErrConfig, err)
	}
	for k, v := range m {
		l, err := strconv.Atoi(k)
		if err != nil || l < 0 {
			return nil, fmt.Errorf("%w: pruned_heads: layer %q", ErrConfig, k)
		}
		seen := map[int]bool{}
		for _, h := range v {
			if h < 0 || seen[h] {
				return nil, fmt.Errorf("%w: pruned_heads: layer %d: head %d", ErrConfig, l, h)
			}
			seen[h] = true
		}
		out[l] = v
	}
	return out, nil
}

// ErrConfig reports a config.json that cannot be used.
var ErrConfig = errors.New("formats: invalid config")

// ParseConfig parses config.json. Unknown architectures give a Config with
// only the generic fields; a known family with missing or inconsistent
// sizes is an error wrapping ErrConfig.
func ParseConfig(raw []byte) (*Config, error) {
	c := &Config{}
	if err := json.Unmarshal(raw, &c.Raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.Raw == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrConfig)
	}
	var generic struct {
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
		TorchDType    string   `json:"torch_dtype"`
		DType         string   `json:"dtype"`
	}
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.ModelType, c.Architectures, c.TorchDType = generic.ModelType, generic.Architectures, generic.TorchDType
	if c.TorchDType == "" {
		c.TorchDType = generic.DType
	}
	switch family(c) {
	case "bert":
		b := &BertConfig{HiddenAct: "gelu", LayerNormEps: 1e-12, TypeVocabSize: 2, PositionEmbeddingType: "absolute"}
		if err := json.Unmarshal(raw, b); err != nil {
			return nil, fmt.Errorf("%w: bert: %v", ErrConfig, err)
		}
		b.NumLabels = numLabels(c.Raw)
		if err := positive("bert", []field{{"vocab_size", b.VocabSize}, {"hidden_size", b.HiddenSize},
			{"num_hidden_layers", b.NumHiddenLayers}, {"num_attention_heads", b.NumAttentionHeads},
			{"intermediate_size", b.IntermediateSize}, {"max_position_embeddings", b.MaxPositionEmbeddings}}); err != nil {
			return nil, err
		}
		if b.HiddenSize%b.NumAttentionHeads != 0 {
			return nil, fmt.Errorf("%w: bert: hidden_size %d is not a multiple of num_attention_heads %d", ErrConfig, b.HiddenSize, b.NumAttentionHeads)
		}
		c.Bert = b
	case "gpt2":
		g := &GPT2Config{ActivationFunction: "gelu_new", LayerNormEpsilon: 1e-5, ScaleAttnWeights: true, TieWordEmbeddings: true}
		if err := json.Unmarshal(raw, g); err != nil {
			return nil, fmt.Errorf("%w: gpt2: %v", ErrConfig, err)
		}
		if g.NInner == 0 {
			g.NInner = 4 * g.NEmbd
		}
		if err := positive("gpt2", []field{{"vocab_size", g.VocabSize}, {"n_embd", g.NEmbd}, {"n_layer", g.NLayer},
			{"n_head", g.NHead}, {"n_positions", g.NPositions}}); err != nil {
			return nil, err
		}
		if g.NEmbd%g.NHead != 0 {
			return nil, fmt.Errorf("%w: gpt2: n_embd %d is not a multiple of n_head %d", ErrConfig, g.NEmbd, g.NHead)
		}
		c.GPT2 = g
	case "llama":
		l := &LlamaConfig{HiddenAct: "silu", RMSNormEps: 1e-6, RopeTheta: 10000, MaxPositionEmbeddings: 2048}
		if c.ModelType == "qwen2" {
			l.AttentionBias = true // Qwen2 always has q/k/v biases
		}
		if err := json.Unmarshal(raw, l); err != nil {
			return nil, fmt.Errorf("%w: llama: %v", ErrConfig, err)
		}
		if _, ok := c.Raw["tie_word_embeddings"]; !ok {
			l.TieWordEmbeddings = c.ModelType != "llama" && c.ModelType != "mistral" && c.ModelType != "qwen2"
		}
		if l.NumKeyValueHeads == 0 {
			l.NumKeyValueHeads = l.NumAttentionHeads
		}
		if err := positive("llama", []field{{"vocab_size", l.VocabSize}, {"hidden_size", l.HiddenSize},
			{"intermediate_size", l.IntermediateSize}, {"num_hidden_layers", l.NumHiddenLayers},
			{"num_attention_heads", l.NumAttentionHeads}, {"num_key_value_heads", l.NumKeyValueHeads}}); err != nil {
			return nil, err
		}
		if l.HeadDim == 0 {
			if l.HiddenSize%l.NumAttentionHeads != 0 {
				return nil, fmt.Errorf("%w: llama: hidden_size %d is not a multiple of num_attention_heads %d", ErrConfig, l.HiddenSize, l.NumAttentionHeads)
			}
			l.HeadDim = l.HiddenSize / l.NumAttentionHeads
		}
		if l.NumAttentionHeads%l.NumKeyValueHeads != 0 {
			return nil, fmt.Errorf("%w: llama: num_attention_heads %d is not a multiple of num_key_value_heads %d", ErrConfig, l.NumAttentionHeads, l.NumKeyValueHeads)
		}
		c.Llama = l
	}
	return c, nil
}

// family maps model_type (or, without one, the architecture name) to the
// families the forward pass knows.
func family(c *Config) string {
	switch c.ModelType {
	case "bert":
		return "bert"
	case "gpt2":
		return "gpt2"
	case "llama", "mistral", "qwen2":
		return "llama"
	case "":
		for _, a := range c.Architectures {
			switch {
			case strings.HasPrefix(a, "Bert"):
				return "bert"
			case strings.HasPrefix(a, "GPT2"):
				return "gpt2"
			case strings.HasPrefix(a, "Llama"), strings.HasPrefix(a, "Mistral"), strings.HasPrefix(a, "Qwen2"):
				return "llama"
			}
		}
	}
	return ""
}

func numLabels(raw map[string]json.RawMessage) int {
	var n int
	if v, ok := raw["num_labels"]; ok && json.Unmarshal(v, &n) == nil && n > 0 {
		return n
	}
	var m map[string]any
	if v, ok := raw["id2label"]; ok && json.Unmarshal(v, &m) == nil {
		return len(m)
	}
	return 0
}

type field struct {
	name  string
	value int
}

func positive(fam string, fields []field) error {
	for _, f := range fields {
		if f.value <= 0 {
			return fmt.Errorf("%w: %s: %s must be positive, got %d", ErrConfig, fam, f.name, f.value)
		}
	}
	return nil
}

// UpdateConfig returns config.json with the given top-level fields set (a nil
// value removes the field), keeping every other field as it was. Keys are
// written sorted, as json.Marshal writes maps.
func UpdateConfig(raw []byte, fields map[string]any) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	for k, v := range fields {
		if v == nil {
			delete(doc, k)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		doc[k] = b
	}
	return json.MarshalIndent(doc, "", "  ")
}
