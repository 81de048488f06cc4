package arch

import (
	"encoding/json"
	"fmt"
	"strings"
)

func init() {
	register(&Family{Name: "gemma", ModelTypes: []string{"gemma", "gemma2", "gemma3_text"},
		// Not Gemma3ForConditionalGeneration (multimodal) nor Gemma 3n.
		ClassPrefixes: []string{"GemmaFor", "GemmaModel", "Gemma2For", "Gemma2Model", "Gemma3ForCausalLM", "Gemma3TextModel", "Gemma3TextForSequenceClassification"},
		Buffers:       []string{"rotary_emb.inv_freq"}, Parse: parseGemma})
}

// GemmaConfig is transformers' GemmaConfig, Gemma2Config and
// Gemma3TextConfig: the Llama family's fields with Gemma's defaults
// (head_dim 256, tied head, rms_norm_eps 1e-6) and what the generations add.
// Gemma's layers are Llama's with (1 + weight) RMSNorms, embeddings scaled
// by sqrt(hidden_size) and a gelu-tanh gated MLP; Gemma 2 and 3 add norms
// after attention and around the MLP (GemmaPreFFNorm, GemmaPostFFNorm),
// query_pre_attn_scalar, soft-capping and sliding-window layers; Gemma 3
// adds q and k norms (Qwen3QNorm, Qwen3KNorm) and a rotary base of its own
// for the sliding layers.
type GemmaConfig struct {
	LlamaConfig
	// Generation is 1 (gemma), 2 (gemma2) or 3 (gemma3_text).
	Generation int
	// HiddenActivation is the MLP's activation (hidden_activation; Gemma 1
	// configs' hidden_act is ignored, as transformers ignores it).
	HiddenActivation string
	// QueryPreAttnScalar: attention scores are scaled by its inverse square
	// root (head_dim for Gemma 1).
	QueryPreAttnScalar float64
	// AttnLogitSoftcapping and FinalLogitSoftcapping cap attention scores
	// and logits with cap·tanh(x/cap); 0 for none.
	AttnLogitSoftcapping, FinalLogitSoftcapping float64
	// RopeLocalBaseFreq is the rotary base of Gemma 3's sliding layers.
	RopeLocalBaseFreq float64
	// Windows is each layer's attention window, 0 for full attention.
	Windows []int
}

// Tensor names of Gemma 2 and 3 layers besides the Llama family's.
const (
	GemmaPreFFNorm  = "pre_feedforward_layernorm"
	GemmaPostFFNorm = "post_feedforward_layernorm"
)

// Gemma returns the Gemma view of the config (Gemma 1, 2 and 3 text), nil
// for another family.
func (c *Config) Gemma() *GemmaConfig {
	g, _ := c.Params.(*GemmaConfig)
	return g
}

func parseGemma(c *Config, raw []byte) (Params, error) {
	gen := 1
	switch {
	case c.ModelType == "gemma2" || c.ModelType == "" && strings.HasPrefix(c.Architecture(), "Gemma2"):
		gen = 2
	case c.ModelType == "gemma3_text" || c.ModelType == "" && strings.HasPrefix(c.Architecture(), "Gemma3"):
		gen = 3
	}
	g := &GemmaConfig{Generation: gen, LlamaConfig: LlamaConfig{HiddenAct: "gelu_pytorch_tanh", RMSNormEps: 1e-6,
		RopeTheta: 10000, MaxPositionEmbeddings: 8192, TieWordEmbeddings: true}, HiddenActivation: "gelu_pytorch_tanh"}
	window := 4096
	switch gen {
	case 2:
		g.AttnLogitSoftcapping, g.FinalLogitSoftcapping = 50, 30
	case 3:
		g.RopeTheta, g.MaxPositionEmbeddings, g.RopeLocalBaseFreq = 1e6, 131072, 10000
	}
	family := c.ModelType
	if family == "" {
		family = "gemma"
	}
	if err := g.parse(c, raw, family, 256); err != nil {
		return nil, err
	}
	g.SlidingWindow = 0 // Gemma's windows are in Windows
	var f struct {
		HiddenActivation      *string  `json:"hidden_activation"`
		QueryPreAttnScalar    *float64 `json:"query_pre_attn_scalar"`
		AttnLogitSoftcapping  *float64 `json:"attn_logit_softcapping"`
		FinalLogitSoftcapping *float64 `json:"final_logit_softcapping"`
		RopeLocalBaseFreq     *float64 `json:"rope_local_base_freq"`
		SlidingWindow         *int     `json:"sliding_window"`
		SlidingWindowPattern  *int     `json:"sliding_window_pattern"`
		// Later Gemma3TextConfig versions write the pattern so, beside
		// layer_types.
		SlidingWindowPatternV2 *int     `json:"_sliding_window_pattern"`
		LayerTypes             []string `json:"layer_types"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, family, err)
	}
	k := checker{family: family}
	if f.HiddenActivation != nil {
		g.HiddenActivation = *f.HiddenActivation
	}
	g.QueryPreAttnScalar = float64(g.HeadDim)
	if gen > 1 {
		g.QueryPreAttnScalar = 256
		if f.QueryPreAttnScalar != nil {
			g.QueryPreAttnScalar = *f.QueryPreAttnScalar
		}
		k.positiveFloat("query_pre_attn_scalar", g.QueryPreAttnScalar)
		// A null cap is no cap; an absent one is the generation's default.
		for _, x := range []struct {
			field string
			v     *float64
			dst   *float64
		}{
			{"attn_logit_softcapping", f.AttnLogitSoftcapping, &g.AttnLogitSoftcapping},
			{"final_logit_softcapping", f.FinalLogitSoftcapping, &g.FinalLogitSoftcapping},
		} {
			if _, set := c.Raw[x.field]; !set {
				continue
			}
			*x.dst = 0
			if x.v != nil {
				*x.dst = *x.v
				k.positiveFloat(x.field, *x.v)
			}
		}
		if f.SlidingWindow != nil {
			window = *f.SlidingWindow
		}
		k.size("sliding_window", window)
	}
	if gen == 3 && f.RopeLocalBaseFreq != nil {
		g.RopeLocalBaseFreq = *f.RopeLocalBaseFreq
	}
	if rp, err := RopeParameters(c); err != nil {
		return nil, err
	} else if v, ok := rp["sliding_attention"]; ok && gen == 3 && f.RopeLocalBaseFreq == nil {
		var local struct {
			RopeTheta *float64 `json:"rope_theta"`
		}
		if err := json.Unmarshal(v, &local); err != nil {
			return nil, fmt.Errorf("%w: %s: rope_parameters.sliding_attention: %v", ErrConfig, family, err)
		}
		if local.RopeTheta != nil {
			g.RopeLocalBaseFreq = *local.RopeTheta
		}
	}
	if gen == 3 {
		k.positiveFloat("rope_local_base_freq", g.RopeLocalBaseFreq)
	}
	if k.err != nil {
		return nil, k.err
	}
	g.Windows = make([]int, g.NumHiddenLayers)
	if gen == 1 {
		return g, nil
	}
	sliding := make([]bool, g.NumHiddenLayers)
	switch {
	case f.LayerTypes != nil:
		if len(f.LayerTypes) != len(sliding) {
			return nil, fmt.Errorf("%w: %s: layer_types has %d entries for %d layers", ErrConfig, family, len(f.LayerTypes), len(sliding))
		}
		for i, t := range f.LayerTypes {
			switch t {
			case "sliding_attention":
				sliding[i] = true
			case "full_attention":
			default:
				return nil, fmt.Errorf("%w: %s: layer_types[%d] %q (want sliding_attention or full_attention)", ErrConfig, family, i, t)
			}
		}
	case gen == 2: // every other layer, from the first
		for i := range sliding {
			sliding[i] = i%2 == 0
		}
	default: // Gemma 3: all but every sliding_window_pattern-th layer
		pattern := 6
		switch {
		case f.SlidingWindowPattern != nil:
			pattern = *f.SlidingWindowPattern
		case f.SlidingWindowPatternV2 != nil:
			pattern = *f.SlidingWindowPatternV2
		}
		if pattern <= 0 {
			return nil, fmt.Errorf("%w: %s: sliding_window_pattern must be positive, got %d", ErrConfig, family, pattern)
		}
		for i := range sliding {
			sliding[i] = (i+1)%pattern != 0
		}
	}
	for i, s := range sliding {
		if s {
			g.Windows[i] = window
		}
	}
	return g, nil
}
