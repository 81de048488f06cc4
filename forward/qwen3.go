package forward

import "github.com/hubmirror/hubmirror/arch"

// Qwen3ForCausalLM and Qwen3Model are Llama's decoder with an RMSNorm over
// each head of q and k before the rotary embedding, an explicit head_dim,
// and sliding-window attention on the layers the config names.
func init() { loaders["qwen3"] = loadQwen3 }

func loadQwen3(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		class = "Qwen3ForCausalLM"
	}
	return loadDecoder(s, cfg, class, decoderSpec{family: "qwen3", windows: cfg.Qwen3().Windows, qkNorm: true})
}
