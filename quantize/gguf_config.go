package quantize

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/hubmirror/hubmirror/formats/gguf"
)

// ggufClasses are the Hugging Face model_type and class of each llama.cpp
// architecture GGUF writes (mistral is written as llama, and read back as
// llama: the same network without a sliding window; llama with experts is
// Mixtral).
var ggufClasses = map[string][2]string{
	"llama":    {"llama", "LlamaForCausalLM"},
	"qwen2":    {"qwen2", "Qwen2ForCausalLM"},
	"qwen3":    {"qwen3", "Qwen3ForCausalLM"},
	"gemma":    {"gemma", "GemmaForCausalLM"},
	"gemma2":   {"gemma2", "Gemma2ForCausalLM"},
	"gemma3":   {"gemma3_text", "Gemma3ForCausalLM"},
	"phi3":     {"phi3", "Phi3ForCausalLM"},
	"qwen2moe": {"qwen2_moe", "Qwen2MoeForCausalLM"},
	"qwen3moe": {"qwen3_moe", "Qwen3MoeForCausalLM"},
}

// ggufConfig synthesizes the config.json of the model in f from its
// metadata, for a file without one beside it (llama.cpp's converter writes
// none): the inverse of ggufHyperparameters, with what llama.cpp's graphs
// fix in code (Gemma 2's alternating windows, Gemma 3's five of six with
// local RoPE base 10000, the routing normalisation of each MoE family)
// written out.
func ggufConfig(f *gguf.File) ([]byte, error) {
	a, _ := f.Get("general.architecture")
	archName, _ := a.(string)
	cls, ok := ggufClasses[archName]
	if !ok {
		return nil, fmt.Errorf("%w: general.architecture %q (reads %s)", ErrGGUFRead, archName, ggufFamilyNames())
	}
	var missing []string
	u := func(key string) int {
		v, ok := f.Get(archName + "." + key)
		if !ok {
			missing = append(missing, archName+"."+key)
			return 0
		}
		switch x := v.(type) {
		case uint32:
			return int(x)
		case uint64:
			return int(x)
		case int32:
			return int(x)
		}
		missing = append(missing, archName+"."+key)
		return 0
	}
	fl := func(key string) (float64, bool) {
		v, ok := f.Get(archName + "." + key)
		if x, isF := v.(float32); ok && isF {
			return shortest(x), true
		}
		return 0, false
	}
	has := func(key string) bool { _, ok := f.Get(archName + "." + key); return ok }
	_, hasHead := f.Tensor("output.weight")
	emb, hasEmb := f.Tensor("token_embd.weight")
	c := map[string]any{
		"model_type":              cls[0],
		"architectures":           []string{cls[1]},
		"hidden_size":             u("embedding_length"),
		"num_hidden_layers":       u("block_count"),
		"intermediate_size":       u("feed_forward_length"),
		"num_attention_heads":     u("attention.head_count"),
		"max_position_embeddings": u("context_length"),
		"tie_word_embeddings":     !hasHead,
		"hidden_act":              "silu",
		"torch_dtype":             "float32",
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: no %v in the metadata", ErrGGUFRead, missing)
	}
	c["num_key_value_heads"] = c["num_attention_heads"]
	if has("attention.head_count_kv") {
		c["num_key_value_heads"] = u("attention.head_count_kv")
	}
	if has("attention.key_length") {
		c["head_dim"] = u("attention.key_length")
	}
	if has("vocab_size") {
		c["vocab_size"] = u("vocab_size")
	} else if hasEmb && len(emb.Dims) == 2 {
		c["vocab_size"] = int(emb.Dims[1])
	} else {
		return nil, fmt.Errorf("%w: neither %s.vocab_size nor token_embd.weight", ErrGGUFRead, archName)
	}
	if v, ok := fl("rope.freq_base"); ok {
		c["rope_theta"] = v
	}
	if v, ok := fl("attention.layer_norm_rms_epsilon"); ok {
		c["rms_norm_eps"] = v
	}
	if t, _ := f.Get(archName + ".rope.scaling.type"); t == "linear" {
		factor, _ := fl("rope.scaling.factor")
		c["rope_scaling"] = map[string]any{"rope_type": "linear", "factor": factor}
	}
	if has("expert_count") {
		c["num_experts_per_tok"] = u("expert_used_count")
		switch archName {
		case "llama":
			c["model_type"], c["architectures"] = "mixtral", []string{"MixtralForCausalLM"}
			c["num_local_experts"] = u("expert_count")
		case "qwen2moe", "qwen3moe":
			c["num_experts"] = u("expert_count")
			c["moe_intermediate_size"] = u("expert_feed_forward_length")
			c["decoder_sparse_step"] = 1
			c["mlp_only_layers"] = []int{}
			c["norm_topk_prob"] = archName == "qwen3moe"
			if archName == "qwen2moe" {
				c["shared_expert_intermediate_size"] = u("expert_shared_feed_forward_length")
			}
		}
	}
	switch archName {
	case "gemma", "gemma2", "gemma3":
		delete(c, "hidden_act")
		c["hidden_activation"] = "gelu_pytorch_tanh"
		hd := u("attention.key_length")
		n := u("block_count")
		scalar := hd
		if (archName == "gemma2" && n == 46) || (archName == "gemma3" && n == 62) {
			scalar = u("embedding_length") / u("attention.head_count")
		}
		if archName != "gemma" {
			c["query_pre_attn_scalar"] = scalar
		}
		if has("attention.sliding_window") {
			c["sliding_window"] = u("attention.sliding_window")
		}
		if v, ok := fl("attn_logit_softcapping"); ok {
			c["attn_logit_softcapping"] = v
		} else if archName == "gemma3" {
			c["attn_logit_softcapping"] = nil
		}
		if v, ok := fl("final_logit_softcapping"); ok {
			c["final_logit_softcapping"] = v
		} else if archName == "gemma3" {
			c["final_logit_softcapping"] = nil
		}
		if archName == "gemma3" {
			c["sliding_window_pattern"] = 6
			c["rope_local_base_freq"] = 10000.0
		}
	case "phi3":
		hd := u("embedding_length") / u("attention.head_count")
		c["partial_rotary_factor"] = float64(u("rope.dimension_count")) / float64(hd)
		c["original_max_position_embeddings"] = u("rope.scaling.original_context_length")
		if has("attention.sliding_window") {
			c["sliding_window"] = u("attention.sliding_window")
		}
		long, okL := f.Tensor("rope_factors_long.weight")
		short, okS := f.Tensor("rope_factors_short.weight")
		if okL && okS {
			lv, err := long.Dequantize()
			if err != nil {
				return nil, err
			}
			sv, err := short.Dequantize()
			if err != nil {
				return nil, err
			}
			rs := map[string]any{"type": "longrope", "long_factor": float64s(lv), "short_factor": float64s(sv)}
			if v, ok := fl("rope.scaling.attn_factor"); ok {
				rs["attention_factor"] = v
			}
			c["rope_scaling"] = rs
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: no %v in the metadata", ErrGGUFRead, missing)
	}
	return json.Marshal(c)
}

// float64s widens v (shortest).
func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = shortest(x)
	}
	return out
}

// shortest is the float64 of x's shortest decimal as a float32 (1e-05,
// not 9.999999747378752e-06): what config.json held before conversion.
func shortest(x float32) float64 {
	d, err := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	if err != nil {
		return float64(x)
	}
	return d
}
