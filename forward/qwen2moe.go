package forward

import "github.com/hubmirror/hubmirror/arch"

// Qwen2MoeForCausalLM and Qwen2MoeModel are Qwen2's decoder (q/k/v biases)
// whose MLP, on the layers the config makes sparse, is an MoE block with a
// shared expert under its sigmoid gate, the top-k probabilities
// renormalized only with norm_topk_prob (moe.go); the other layers have a
// dense MLP.
func init() { loaders["qwen2_moe"] = loadQwen2MoE }

func loadQwen2MoE(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.Qwen2MoE()
	class := moeClass(cfg, "Qwen2MoeForCausalLM")
	if err := noSlidingWindow(c.UseSlidingWindow, class); err != nil {
		return nil, Info{}, err
	}
	nm := moeNames{block: arch.QwenMoE, gate: arch.QwenExpertGate, up: arch.QwenExpertUp, down: arch.QwenExpertDown,
		shared: true, experts: c.Experts, topK: c.TopK, inter: c.ExpertIntermediate, sharedInt: c.SharedIntermediate,
		normTopK: c.NormTopK}
	return loadDecoder(s, cfg, class,
		decoderSpec{family: "qwen2_moe", windows: make([]int, c.NumHiddenLayers), moe: moeSpec(c.Sparse, c.HiddenSize, nm)})
}
