package quantize

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/gguf"
)

// ggufFamily is how llama.cpp's convert_hf_to_gguf.py lays out one
// architecture: its llama.cpp name, the tensor names inside a layer, the
// per-family changes to the weights, and the hyperparameters it writes.
// A family is added with one entry in ggufFamilies.
type ggufFamily struct {
	// arch is general.architecture and the prefix of the hyperparameter
	// keys.
	arch string
	// layer maps a tensor name inside a Hugging Face layer (without
	// .weight/.bias) to llama.cpp's (without blk.N. and .weight/.bias).
	layer map[string]string
	// permuteQK reorders the rows of the q and k projections from Hugging
	// Face's rotary layout (halves) to ggml's interleaved one: llama.cpp
	// does it for the "llama" architecture only, whose graph uses the
	// interleaved (GPT-J style) RoPE; qwen2, qwen3 and gemma use NeoX style
	// on the rows as Hugging Face stores them.
	permuteQK bool
	// normShift is added to every norm weight: Gemma's RMSNorm multiplies
	// by (1 + w), llama.cpp's by w.
	normShift float32
	// noHead: llama.cpp's graph always multiplies by token_embd (Gemma);
	// an lm_head is dropped, which is only right when it is tied.
	noHead bool
	// params adds the family's hyperparameters (beyond the ones every
	// family has) and refuses what llama.cpp's graph cannot express.
	params func(c *arch.Config, add func(key string, v any)) error
}

// The layer tensors every decoder family shares (Llama's names).
var ggufLlamaLayer = map[string]string{
	arch.LlamaInputNorm:         "attn_norm",
	arch.LlamaQuery:             "attn_q",
	arch.LlamaKey:               "attn_k",
	arch.LlamaValue:             "attn_v",
	arch.LlamaAttentionOutput:   "attn_output",
	arch.LlamaPostAttentionNorm: "ffn_norm",
	arch.LlamaGate:              "ffn_gate",
	arch.LlamaUp:                "ffn_up",
	arch.LlamaDown:              "ffn_down",
}

// withLayer returns base with the entries of extra added or replaced.
func withLayer(base map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

var (
	ggufQKNorms = map[string]string{arch.Qwen3QNorm: "attn_q_norm", arch.Qwen3KNorm: "attn_k_norm"}
	// Gemma 2 and 3: post_attention_layernorm is the norm after attention,
	// the FFN has a norm before (ffn_norm) and after (post_ffw_norm).
	ggufGemma2Layer = withLayer(ggufLlamaLayer, map[string]string{
		arch.LlamaPostAttentionNorm: "post_attention_norm",
		arch.GemmaPreFFNorm:         "ffn_norm",
		arch.GemmaPostFFNorm:        "post_ffw_norm",
	})
)

// ggufFamilies maps a config.json model_type to its GGUF layout. Phi-3 and
// the mixtures of experts go here too.
var ggufFamilies = map[string]*ggufFamily{
	"llama":       {arch: "llama", layer: ggufLlamaLayer, permuteQK: true, params: ggufNoWindows},
	"mistral":     {arch: "llama", layer: ggufLlamaLayer, permuteQK: true, params: ggufNoWindows},
	"qwen2":       {arch: "qwen2", layer: ggufLlamaLayer, params: ggufNoWindows},
	"qwen3":       {arch: "qwen3", layer: withLayer(ggufLlamaLayer, ggufQKNorms), params: ggufNoWindows},
	"gemma":       {arch: "gemma", layer: ggufLlamaLayer, normShift: 1, noHead: true, params: ggufGemma},
	"gemma2":      {arch: "gemma2", layer: ggufGemma2Layer, normShift: 1, noHead: true, params: ggufGemma},
	"gemma3_text": {arch: "gemma3", layer: withLayer(ggufGemma2Layer, ggufQKNorms), normShift: 1, noHead: true, params: ggufGemma},
}

// ggufFamilyOf returns the GGUF layout of cfg's model, or an error naming
// the families GGUF output supports.
func ggufFamilyOf(cfg *arch.Config) (*ggufFamily, error) {
	if cfg == nil || cfg.Params == nil {
		name := "(no config.json)"
		if cfg != nil {
			name = cfg.Architecture()
		}
		return nil, fmt.Errorf("%w: GGUF output is for %s, not %s", ErrGGUFUnsupported, ggufFamilyNames(), name)
	}
	mt := cfg.ModelType
	if mt == "" {
		// A config without model_type: the family's name, or the class's.
		switch a := cfg.Architecture(); {
		case strings.HasPrefix(a, "Mistral"):
			mt = "mistral"
		case strings.HasPrefix(a, "Qwen2"):
			mt = "qwen2"
		case strings.HasPrefix(a, "Gemma3"):
			mt = "gemma3_text"
		case strings.HasPrefix(a, "Gemma2"):
			mt = "gemma2"
		default:
			mt = cfg.Family()
		}
	}
	f, ok := ggufFamilies[mt]
	if !ok {
		return nil, fmt.Errorf("%w: GGUF output is for %s, not %s (model_type %q)", ErrGGUFUnsupported, ggufFamilyNames(), cfg.Architecture(), cfg.ModelType)
	}
	return f, nil
}

func ggufFamilyNames() string {
	return "the decoder families llama, mistral, qwen2, qwen3, gemma, gemma2 and gemma3 (text)"
}

// ggufHyperparameters returns the hyperparameters of a decoder of the
// Llama family or one built on its config, as convert_hf_to_gguf.py's
// TextModel writes them, then the family's own.
func ggufHyperparameters(f *ggufFamily, cfg *arch.Config) ([]gguf.KV, error) {
	c := llamaView(cfg)
	if c == nil {
		return nil, fmt.Errorf("%w: %s has no decoder hyperparameters", ErrGGUFUnsupported, cfg.Architecture())
	}
	var md []gguf.KV
	add := func(key string, v any) { md = append(md, gguf.KV{Key: f.arch + "." + key, Value: v}) }
	act := c.HiddenAct
	if g := cfg.Gemma(); g != nil {
		act = g.HiddenActivation
	}
	want := "silu"
	if strings.HasPrefix(f.arch, "gemma") {
		want = "gelu_pytorch_tanh"
	}
	if act != want && !(want == "gelu_pytorch_tanh" && act == "gelu_new") {
		return nil, fmt.Errorf("%w: activation %q: llama.cpp's %s graph computes %s", ErrGGUFUnsupported, act, f.arch, want)
	}
	add("context_length", uint32(c.MaxPositionEmbeddings))
	add("embedding_length", uint32(c.HiddenSize))
	add("block_count", uint32(c.NumHiddenLayers))
	add("feed_forward_length", uint32(c.IntermediateSize))
	add("attention.head_count", uint32(c.NumAttentionHeads))
	add("attention.head_count_kv", uint32(c.NumKeyValueHeads))
	add("rope.freq_base", float32(c.RopeTheta))
	add("attention.layer_norm_rms_epsilon", float32(c.RMSNormEps))
	add("attention.key_length", uint32(c.HeadDim))
	add("attention.value_length", uint32(c.HeadDim))
	add("rope.dimension_count", uint32(c.HeadDim))
	add("vocab_size", uint32(c.VocabSize))
	if err := ggufRopeScaling(cfg, add); err != nil {
		return nil, err
	}
	if f.params != nil {
		if err := f.params(cfg, add); err != nil {
			return nil, err
		}
	}
	return md, nil
}

// llamaView returns the Llama-family fields of the configs built on them.
func llamaView(cfg *arch.Config) *arch.LlamaConfig {
	switch {
	case cfg.Llama() != nil:
		return cfg.Llama()
	case cfg.Qwen3() != nil:
		return &cfg.Qwen3().LlamaConfig
	case cfg.Gemma() != nil:
		return &cfg.Gemma().LlamaConfig
	}
	return nil
}

// ggufRopeScaling writes linear RoPE scaling (rope.scaling.type linear and
// its factor) and refuses the other kinds.
func ggufRopeScaling(cfg *arch.Config, add func(string, any)) error {
	raw, ok := cfg.Raw["rope_scaling"]
	if !ok || string(raw) == "null" {
		if rp, err := arch.RopeParameters(cfg); err == nil {
			if full, ok := rp["full_attention"]; ok {
				raw = full
			} else if rp != nil {
				b, _ := json.Marshal(rp)
				raw = b
			}
		}
		if raw == nil {
			return nil
		}
	}
	var rs struct {
		Type     string  `json:"type"`
		RopeType string  `json:"rope_type"`
		Factor   float64 `json:"factor"`
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		return fmt.Errorf("%w: rope_scaling %s: %v", ErrGGUFUnsupported, raw, err)
	}
	t := rs.RopeType
	if t == "" {
		t = rs.Type
	}
	switch t {
	case "", "default":
		return nil
	case "linear":
		if !(rs.Factor > 0) {
			return fmt.Errorf("%w: linear rope_scaling without a positive factor: %s", ErrGGUFUnsupported, raw)
		}
		add("rope.scaling.type", "linear")
		add("rope.scaling.factor", float32(rs.Factor))
		return nil
	}
	return fmt.Errorf("%w: rope_scaling %s (GGUF output writes linear scaling only)", ErrGGUFUnsupported, raw)
}

// ggufNoWindows refuses sliding-window attention that binds: llama.cpp's
// llama, qwen2 and qwen3 graphs attend to the whole context.
func ggufNoWindows(cfg *arch.Config, _ func(string, any)) error {
	c := llamaView(cfg)
	var windows []int
	switch {
	case cfg.Qwen3() != nil:
		windows = cfg.Qwen3().Windows
	case cfg.ModelType == "mistral" && c.SlidingWindow > 0:
		windows = []int{c.SlidingWindow}
	case cfg.ModelType == "qwen2" && c.SlidingWindow > 0:
		var use bool
		_ = json.Unmarshal(cfg.Raw["use_sliding_window"], &use)
		if use {
			windows = []int{c.SlidingWindow}
		}
	}
	for _, w := range windows {
		if w > 0 && w < c.MaxPositionEmbeddings {
			return fmt.Errorf("%w: sliding-window attention (window %d < max_position_embeddings %d): llama.cpp's %s graph attends to the whole context",
				ErrGGUFUnsupported, w, c.MaxPositionEmbeddings, cfg.ModelType)
		}
	}
	return nil
}

// ggufGemma writes Gemma 2's and 3's soft-capping and window, and refuses
// what llama.cpp fixes in code for these architectures (llama-model.cpp):
// the attention scale 1/sqrt(head_dim) (1/sqrt(hidden/heads) for the 27B
// shapes), Gemma 2's sliding window on every other layer from the first,
// Gemma 3's on five layers of six with RoPE base 10000.
func ggufGemma(cfg *arch.Config, add func(string, any)) error {
	g := cfg.Gemma()
	if g.Generation == 1 {
		return nil
	}
	scalar := float64(g.HeadDim)
	if (g.Generation == 2 && g.NumHiddenLayers == 46) || (g.Generation == 3 && g.NumHiddenLayers == 62) {
		scalar = float64(g.HiddenSize / g.NumAttentionHeads)
	}
	if math.Abs(g.QueryPreAttnScalar-scalar) > 1e-9 {
		return fmt.Errorf("%w: query_pre_attn_scalar %g: llama.cpp's gemma%d graph scales attention by 1/sqrt(%g)", ErrGGUFUnsupported, g.QueryPreAttnScalar, g.Generation, scalar)
	}
	window := 0
	for i, w := range g.Windows {
		sliding := i%2 == 0
		if g.Generation == 3 {
			sliding = i%6 < 5
		}
		if (w > 0) != sliding {
			return fmt.Errorf("%w: layer %d's attention is %s: llama.cpp's gemma%d graph makes %s sliding-window layers", ErrGGUFUnsupported, i,
				map[bool]string{true: "sliding-window", false: "global"}[w > 0], g.Generation,
				map[int]string{2: "the even", 3: "five of every six (not the 6th, 12th, ...)"}[g.Generation])
		}
		if w > 0 {
			window = w
		}
	}
	if window > 0 {
		add("attention.sliding_window", uint32(window))
	}
	if g.Generation == 2 {
		if g.AttnLogitSoftcapping == 0 || g.FinalLogitSoftcapping == 0 {
			return fmt.Errorf("%w: gemma2 without soft-capping: llama.cpp's gemma2 graph always caps", ErrGGUFUnsupported)
		}
		add("attn_logit_softcapping", float32(g.AttnLogitSoftcapping))
		add("final_logit_softcapping", float32(g.FinalLogitSoftcapping))
		return nil
	}
	if g.AttnLogitSoftcapping != 0 {
		return fmt.Errorf("%w: gemma3 with attn_logit_softcapping: llama.cpp's gemma3 graph does not cap attention", ErrGGUFUnsupported)
	}
	if g.FinalLogitSoftcapping != 0 {
		add("final_logit_softcapping", float32(g.FinalLogitSoftcapping))
	}
	if window > 0 && g.RopeLocalBaseFreq != 10000 {
		return fmt.Errorf("%w: rope_local_base_freq %g: llama.cpp's gemma3 graph uses 10000 on sliding-window layers", ErrGGUFUnsupported, g.RopeLocalBaseFreq)
	}
	return nil
}
