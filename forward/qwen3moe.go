package forward

import "github.com/hubmirror/hubmirror/arch"

// Qwen3MoeForCausalLM and Qwen3MoeModel are Qwen3's decoder (q_norm and
// k_norm before the rotary embedding) whose MLP, on the layers the config
// makes sparse, is an MoE block, the top-k probabilities renormalized with
// norm_topk_prob (moe.go); the other layers have a dense MLP.
func init() { loaders["qwen3_moe"] = loadQwen3MoE }

func loadQwen3MoE(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.Qwen3MoE()
	class := moeClass(cfg, "Qwen3MoeForCausalLM")
	if err := noSlidingWindow(c.UseSlidingWindow, class); err != nil {
		return nil, Info{}, err
	}
	nm := moeNames{block: arch.QwenMoE, gate: arch.QwenExpertGate, up: arch.QwenExpertUp, down: arch.QwenExpertDown,
		experts: c.Experts, topK: c.TopK, inter: c.ExpertIntermediate, normTopK: c.NormTopK}
	return loadDecoder(s, cfg, class, decoderSpec{family: "qwen3_moe", windows: make([]int, c.NumHiddenLayers), qkNorm: true,
		moe: moeSpec(c.Sparse, c.HiddenSize, nm)})
}
