package arch

import (
	"encoding/json"
	"fmt"
)

func init() {
	register(&Family{Name: "qwen3", ModelTypes: []string{"qwen3"}, ClassPrefixes: []string{"Qwen3For", "Qwen3Model"}, // not Qwen3Moe*
		Buffers: []string{"rotary_emb.inv_freq"}, Parse: parseQwen3})
}

// Qwen3Config is transformers' Qwen3Config (dense Qwen3): the Llama
// family's fields with Qwen3's defaults (head_dim 128, no q/k/v bias,
// rms_norm_eps 1e-6), and the sliding-window layers. Its layers are Llama's
// with an RMSNorm over each head of q and k before the rotary embedding
// (Qwen3QNorm, Qwen3KNorm).
type Qwen3Config struct {
	LlamaConfig
	// Windows is each layer's attention window, 0 for full attention:
	// sliding_window on the layers layer_types names "sliding_attention"
	// (by default those from max_window_layers on), none at all unless
	// use_sliding_window.
	Windows []int
}

// Tensor names of Qwen3 layers besides the Llama family's, relative to the
// layer's prefix.
const (
	Qwen3QNorm = "self_attn.q_norm"
	Qwen3KNorm = "self_attn.k_norm"
)

// Qwen3 returns the Qwen3 view of the config, nil for another family.
func (c *Config) Qwen3() *Qwen3Config {
	q, _ := c.Params.(*Qwen3Config)
	return q
}

func parseQwen3(c *Config, raw []byte) (Params, error) {
	q := &Qwen3Config{LlamaConfig: LlamaConfig{HiddenAct: "silu", RMSNormEps: 1e-6, RopeTheta: 10000,
		MaxPositionEmbeddings: 32768, SlidingWindow: 4096}}
	if err := q.parse(c, raw, "qwen3", 128); err != nil {
		return nil, err
	}
	var w struct {
		UseSlidingWindow bool     `json:"use_sliding_window"`
		MaxWindowLayers  *int     `json:"max_window_layers"`
		LayerTypes       []string `json:"layer_types"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("%w: qwen3: %v", ErrConfig, err)
	}
	if v, ok := c.Raw["sliding_window"]; ok && string(v) == "null" {
		q.SlidingWindow = 0
	}
	n := q.NumHiddenLayers
	q.Windows = make([]int, n)
	if !w.UseSlidingWindow || q.SlidingWindow == 0 {
		// transformers drops sliding_window without use_sliding_window,
		// whatever layer_types says.
		return q, nil
	}
	if w.LayerTypes == nil {
		from := 28
		if w.MaxWindowLayers != nil {
			from = *w.MaxWindowLayers
		}
		for i := range q.Windows {
			if i >= from {
				q.Windows[i] = q.SlidingWindow
			}
		}
		return q, nil
	}
	if len(w.LayerTypes) != n {
		return nil, fmt.Errorf("%w: qwen3: layer_types has %d entries for %d layers", ErrConfig, len(w.LayerTypes), n)
	}
	for i, t := range w.LayerTypes {
		switch t {
		case "sliding_attention":
			q.Windows[i] = q.SlidingWindow
		case "full_attention":
		default:
			return nil, fmt.Errorf("%w: qwen3: layer_types[%d] %q (want sliding_attention or full_attention)", ErrConfig, i, t)
		}
	}
	return q, nil
}
