package forward

import "github.com/hubmirror/hubmirror/arch"

// MixtralForCausalLM and MixtralModel are Mistral's decoder (sliding window
// on every layer when the config sets one) with a sparse MoE block in place
// of the MLP: top-k routing renormalized, experts w1/w2/w3 (moe.go).
func init() { loaders["mixtral"] = loadMixtral }

func loadMixtral(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.Mixtral()
	windows := make([]int, c.NumHiddenLayers)
	for i := range windows {
		windows[i] = c.SlidingWindow
	}
	nm := moeNames{block: arch.MixtralMoE, gate: arch.MixtralExpertGate, up: arch.MixtralExpertUp, down: arch.MixtralExpertDown,
		experts: c.Experts, topK: c.TopK, inter: c.ExpertIntermediate, normTopK: true}
	return loadDecoder(s, cfg, moeClass(cfg, "MixtralForCausalLM"),
		decoderSpec{family: "mixtral", windows: windows, moe: moeSpec(c.Sparse, c.HiddenSize, nm)})
}
