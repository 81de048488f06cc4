package quantize

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/weights"
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
	// family has; a key already added is replaced) and refuses what
	// llama.cpp's graph cannot express.
	params func(c *arch.Config, add func(key string, v any)) error
	// experts is the mixture-of-experts block under a layer ("mlp",
	// "block_sparse_moe") whose experts.<e>.<projection> matrices are
	// stacked into one 3-D tensor per projection, named by expertNames
	// (projection -> llama.cpp's name); "" for a dense family.
	experts     string
	expertNames map[string]string
	// float32 are llama.cpp's names of matrices written F32 whatever the
	// type (the routers: convert_hf_to_gguf.py keeps ffn_gate_inp and
	// ffn_gate_inp_shexp in F32).
	float32 map[string]bool
	// needsHead: llama.cpp's graph requires output.weight (qwen2moe), so
	// a tied head is written as a copy of the token embeddings.
	needsHead bool
	// ownRope: the family writes its RoPE scaling itself (Phi-3's
	// LongRoPE); the generic linear-only handling is skipped.
	ownRope bool
	// extra returns tensors that are not in the checkpoint (Phi-3's rope
	// factors).
	extra func(c *arch.Config) ([]*gguf.Tensor, []GGUFTensor, error)
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

var (
	// Phi-3 (Phi3MiniModel): q, k and v fused as attn_qkv, gate and up
	// as ffn_up (gate rows first: llama.cpp's SWIGLU takes the first
	// half as the gate).
	ggufPhi3Layer = map[string]string{
		arch.LlamaInputNorm:         "attn_norm",
		arch.Phi3QKV:                "attn_qkv",
		arch.LlamaAttentionOutput:   "attn_output",
		arch.LlamaPostAttentionNorm: "ffn_norm",
		arch.Phi3GateUp:             "ffn_up",
		arch.LlamaDown:              "ffn_down",
	}
	// The attention of the Llama layers with an MoE block instead of the
	// MLP.
	ggufMoEAttention = map[string]string{
		arch.LlamaInputNorm:         "attn_norm",
		arch.LlamaQuery:             "attn_q",
		arch.LlamaKey:               "attn_k",
		arch.LlamaValue:             "attn_v",
		arch.LlamaAttentionOutput:   "attn_output",
		arch.LlamaPostAttentionNorm: "ffn_norm",
	}
	// Mixtral (LlamaModel with experts): the router and w1/w2/w3.
	ggufMixtralLayer   = withLayer(ggufMoEAttention, map[string]string{arch.MixtralMoE + "." + arch.MoERouter: "ffn_gate_inp"})
	ggufMixtralExperts = map[string]string{arch.MixtralExpertGate: "ffn_gate_exps", arch.MixtralExpertDown: "ffn_down_exps", arch.MixtralExpertUp: "ffn_up_exps"}
	ggufQwenExperts    = map[string]string{arch.QwenExpertGate: "ffn_gate_exps", arch.QwenExpertDown: "ffn_down_exps", arch.QwenExpertUp: "ffn_up_exps"}
	ggufQwenRouter     = map[string]string{arch.QwenMoE + "." + arch.MoERouter: "ffn_gate_inp"}
	// Qwen2-MoE's shared expert and its sigmoid gate.
	ggufQwen2MoELayer = withLayer(withLayer(ggufMoEAttention, ggufQwenRouter), map[string]string{
		arch.QwenMoE + "." + arch.Qwen2MoESharedExpert + "." + arch.QwenExpertGate: "ffn_gate_shexp",
		arch.QwenMoE + "." + arch.Qwen2MoESharedExpert + "." + arch.QwenExpertUp:   "ffn_up_shexp",
		arch.QwenMoE + "." + arch.Qwen2MoESharedExpert + "." + arch.QwenExpertDown: "ffn_down_shexp",
		arch.QwenMoE + "." + arch.Qwen2MoESharedGate:                               "ffn_gate_inp_shexp",
	})
	ggufQwen3MoELayer = withLayer(withLayer(ggufMoEAttention, ggufQwenRouter), ggufQKNorms)
	ggufRouters       = map[string]bool{"ffn_gate_inp": true, "ffn_gate_inp_shexp": true}
)

// ggufFamilies maps a config.json model_type to its GGUF layout.
var ggufFamilies = map[string]*ggufFamily{
	"llama":       {arch: "llama", layer: ggufLlamaLayer, permuteQK: true, params: ggufNoWindows},
	"mistral":     {arch: "llama", layer: ggufLlamaLayer, permuteQK: true, params: ggufNoWindows},
	"qwen2":       {arch: "qwen2", layer: ggufLlamaLayer, params: ggufNoWindows},
	"qwen3":       {arch: "qwen3", layer: withLayer(ggufLlamaLayer, ggufQKNorms), params: ggufNoWindows},
	"gemma":       {arch: "gemma", layer: ggufLlamaLayer, normShift: 1, noHead: true, params: ggufGemma},
	"gemma2":      {arch: "gemma2", layer: ggufGemma2Layer, normShift: 1, noHead: true, params: ggufGemma},
	"gemma3_text": {arch: "gemma3", layer: withLayer(ggufGemma2Layer, ggufQKNorms), normShift: 1, noHead: true, params: ggufGemma},
	"phi3":        {arch: "phi3", layer: ggufPhi3Layer, ownRope: true, params: ggufPhi3, extra: ggufPhi3RopeFactors},
	// llama.cpp writes Mixtral as the llama architecture with experts.
	"mixtral": {arch: "llama", layer: ggufMixtralLayer, permuteQK: true, experts: arch.MixtralMoE, expertNames: ggufMixtralExperts,
		float32: ggufRouters, params: ggufMoE},
	"qwen2_moe": {arch: "qwen2moe", layer: ggufQwen2MoELayer, experts: arch.QwenMoE, expertNames: ggufQwenExperts,
		float32: ggufRouters, needsHead: true, params: ggufMoE},
	"qwen3_moe": {arch: "qwen3moe", layer: ggufQwen3MoELayer, experts: arch.QwenMoE, expertNames: ggufQwenExperts,
		float32: ggufRouters, params: ggufMoE},
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
		case strings.HasPrefix(a, "Qwen2Moe"):
			mt = "qwen2_moe"
		case strings.HasPrefix(a, "Qwen3Moe"):
			mt = "qwen3_moe"
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
	return "the decoder families llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3 (text), phi3, mixtral, qwen2_moe and qwen3_moe"
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
	add := func(key string, v any) {
		for i := range md {
			if md[i].Key == f.arch+"."+key {
				md[i].Value = v
				return
			}
		}
		md = append(md, gguf.KV{Key: f.arch + "." + key, Value: v})
	}
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
	if !f.ownRope {
		if err := ggufRopeScaling(cfg, add); err != nil {
			return nil, err
		}
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
	case cfg.Phi3() != nil:
		return &cfg.Phi3().LlamaConfig
	case cfg.Mixtral() != nil:
		return &cfg.Mixtral().LlamaConfig
	case cfg.Qwen2MoE() != nil:
		return &cfg.Qwen2MoE().LlamaConfig
	case cfg.Qwen3MoE() != nil:
		return &cfg.Qwen3MoE().LlamaConfig
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
	case (cfg.ModelType == "mistral" || cfg.Mixtral() != nil) && c.SlidingWindow > 0:
		windows = []int{c.SlidingWindow}
	case cfg.Phi3() != nil:
		windows = cfg.Phi3().Windows
	case cfg.Qwen2MoE() != nil && cfg.Qwen2MoE().UseSlidingWindow && c.SlidingWindow > 0:
		windows = []int{c.SlidingWindow}
	case cfg.Qwen3MoE() != nil && cfg.Qwen3MoE().UseSlidingWindow && c.SlidingWindow > 0:
		windows = []int{c.SlidingWindow}
	case cfg.ModelType == "qwen2" && c.SlidingWindow > 0:
		var use bool
		_ = json.Unmarshal(cfg.Raw["use_sliding_window"], &use)
		if use {
			windows = []int{c.SlidingWindow}
		}
	}
	name := cfg.ModelType
	if name == "" {
		name = cfg.Family()
	}
	for _, w := range windows {
		if w > 0 && w < c.MaxPositionEmbeddings {
			return fmt.Errorf("%w: sliding-window attention (window %d < max_position_embeddings %d): llama.cpp's %s graph attends to the whole context",
				ErrGGUFUnsupported, w, c.MaxPositionEmbeddings, name)
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

// ggufPhi3 writes what Phi3MiniModel writes beyond the common keys: the
// rotary dimensions (partial_rotary_factor), the pretraining context
// (original_max_position_embeddings: llama.cpp takes the long factors
// when its context is longer, the short ones otherwise), LongRoPE's
// attention factor (rope.scaling.attn_factor, by which llama.cpp
// multiplies cos and sin as transformers does), and the sliding window.
// llama.cpp's phi3 graph disables sliding-window attention, so a window
// that binds is refused.
func ggufPhi3(cfg *arch.Config, add func(string, any)) error {
	p := cfg.Phi3()
	if err := ggufNoWindows(cfg, add); err != nil {
		return err
	}
	if p.NumAttentionHeads*p.HeadDim != p.HiddenSize {
		return fmt.Errorf("%w: phi3 with %d heads of %d != hidden_size %d: llama.cpp's phi3 layers are hidden_size wide",
			ErrGGUFUnsupported, p.NumAttentionHeads, p.HeadDim, p.HiddenSize)
	}
	add("rope.dimension_count", uint32(p.RotaryDim))
	add("rope.scaling.original_context_length", uint32(p.OriginalMaxPositionEmbeddings))
	if l := p.LongRoPE; l != nil {
		add("rope.scaling.attn_factor", float32(l.AttentionFactor))
	}
	add("attention.sliding_window", uint32(p.SlidingWindow))
	return nil
}

// ggufPhi3RopeFactors returns LongRoPE's factors as llama.cpp's
// rope_factors_long and rope_factors_short (F32, rotary dimensions / 2),
// none without LongRoPE.
func ggufPhi3RopeFactors(cfg *arch.Config) ([]*gguf.Tensor, []GGUFTensor, error) {
	l := cfg.Phi3().LongRoPE
	if l == nil {
		return nil, nil, nil
	}
	var ts []*gguf.Tensor
	var rep []GGUFTensor
	for _, x := range []struct {
		name, field string
		v           []float64
	}{{"rope_factors_long.weight", "long_factor", l.LongFactor}, {"rope_factors_short.weight", "short_factor", l.ShortFactor}} {
		v := make([]float32, len(x.v))
		for i, f := range x.v {
			v[i] = float32(f)
		}
		b, err := encodeFloats(v, gguf.TypeF32)
		if err != nil {
			return nil, nil, err
		}
		ts = append(ts, &gguf.Tensor{Name: x.name, Dims: []uint64{uint64(len(v))}, Type: gguf.TypeF32, Data: weights.SourceFunc(func() ([]byte, error) { return b, nil })})
		rep = append(rep, GGUFTensor{Name: "rope_scaling." + x.field, GGUF: x.name, From: weights.F32, To: gguf.TypeF32.String(), Shape: []int64{int64(len(v))}})
	}
	return ts, rep, nil
}

// ggufMoE writes the experts' hyperparameters (expert_count,
// expert_used_count, and for Qwen the experts' widths) and refuses what
// llama.cpp's graphs fix in code: every layer an MoE layer (no
// mlp_only_layers or decoder_sparse_step), the top-k weights renormalised
// for llama (Mixtral) and qwen3moe, not for qwen2moe (its
// expert_weights_norm key is not read for these architectures), no
// sliding window.
func ggufMoE(cfg *arch.Config, add func(string, any)) error {
	if err := ggufNoWindows(cfg, add); err != nil {
		return err
	}
	var m *arch.MoE
	name, wantNorm := cfg.Family(), true
	switch {
	case cfg.Mixtral() != nil:
		m = &cfg.Mixtral().MoE
	case cfg.Qwen2MoE() != nil:
		m, wantNorm = &cfg.Qwen2MoE().MoE, false
		add("expert_feed_forward_length", uint32(m.ExpertIntermediate))
		add("expert_shared_feed_forward_length", uint32(m.SharedIntermediate))
		if m.SharedIntermediate == 0 {
			return fmt.Errorf("%w: qwen2_moe without a shared expert: llama.cpp's qwen2moe graph requires one", ErrGGUFUnsupported)
		}
	case cfg.Qwen3MoE() != nil:
		q := cfg.Qwen3MoE()
		m = &q.MoE
		add("expert_feed_forward_length", uint32(m.ExpertIntermediate))
		if q.AttentionBias {
			return fmt.Errorf("%w: qwen3_moe with attention_bias: llama.cpp's qwen3moe graph has no attention output bias", ErrGGUFUnsupported)
		}
	}
	if m.Experts == 0 {
		return fmt.Errorf("%w: %s without experts: llama.cpp's graph requires them", ErrGGUFUnsupported, name)
	}
	for i, s := range m.Sparse {
		if !s {
			return fmt.Errorf("%w: %s layer %d has a dense MLP (mlp_only_layers, decoder_sparse_step): llama.cpp's graph makes every layer an MoE layer",
				ErrGGUFUnsupported, name, i)
		}
	}
	if m.NormTopK != wantNorm {
		return fmt.Errorf("%w: %s with norm_topk_prob %v: llama.cpp's graph for it always %s the top-k routing weights",
			ErrGGUFUnsupported, name, m.NormTopK, map[bool]string{true: "renormalises", false: "leaves unnormalised"}[wantNorm])
	}
	add("expert_count", uint32(m.Experts))
	add("expert_used_count", uint32(m.TopK))
	return nil
}
