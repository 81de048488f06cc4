package forward

import (
	"fmt"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// The MoE layers beside the dense ones (bench_test.go): one
// Mixtral-8x7B-shaped and one Qwen3-30B-A3B-shaped decoder layer at
// sequence 256, random weights (so that the routers spread the tokens over
// the experts about evenly). bench/forward_torch.py times PyTorch on the
// same shapes.

// layerFLOPs counts the work of a benchmark model's decoder layers:
// decoderFLOPs for a dense family, moeFLOPs for an MoE one.
func layerFLOPs(cfg *arch.Config, n int) float64 {
	var l *arch.LlamaConfig
	var m *arch.MoE
	switch {
	case cfg.Mixtral() != nil:
		l, m = &cfg.Mixtral().LlamaConfig, &cfg.Mixtral().MoE
	case cfg.Qwen2MoE() != nil:
		l, m = &cfg.Qwen2MoE().LlamaConfig, &cfg.Qwen2MoE().MoE
	case cfg.Qwen3MoE() != nil:
		l, m = &cfg.Qwen3MoE().LlamaConfig, &cfg.Qwen3MoE().MoE
	default:
		return decoderFLOPs(cfg.Params.Sizes(), n)
	}
	return moeFLOPs(l, m, n)
}

// moeFLOPs counts the multiply-adds (×2) of an MoE family's decoder layers
// at sequence n as computed: attention as decoderFLOPs counts it, and in
// a sparse layer the router and, for every token, its top-k experts (and a
// shared expert with its gate); a dense layer's MLP otherwise.
func moeFLOPs(l *arch.LlamaConfig, m *arch.MoE, n int) float64 {
	s := l.Sizes()
	attn := decoderFLOPs(arch.Sizes{Layers: 1, HiddenSize: s.HiddenSize, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim}, n)
	N, H := float64(n), float64(s.HiddenSize)
	total := 0.0
	for _, sparse := range m.Sparse {
		total += attn
		if !sparse {
			total += 2 * N * H * float64(l.IntermediateSize) * 3
			continue
		}
		total += 2 * N * H * float64(m.Experts)
		total += 2 * N * float64(m.TopK) * H * float64(m.ExpertIntermediate) * 3
		if m.SharedIntermediate > 0 {
			total += 2*N*H*float64(m.SharedIntermediate)*3 + 2*N*H
		}
	}
	return total
}

// moeLayerGraph is the base model of an MoE family with one sparse decoder
// layer and a small vocabulary: attention as the Llama layer's, the router
// under block, and the experts one tensor each (gate, up, down named by
// proj) or, with fused, in transformers 5's two 3-D tensors.
func moeLayerGraph(b *testing.B, config, block string, proj [3]string, fused bool, H, E, I, NH, NKV, dh int64, norms map[string]int64) *weights.Graph {
	p := "model.layers.0."
	s := map[string][]int64{
		"model.embed_tokens.weight": {1024, H}, "model.norm.weight": {H},
		p + "input_layernorm.weight": {H}, p + "post_attention_layernorm.weight": {H},
		p + "self_attn.q_proj.weight": {NH * dh, H}, p + "self_attn.k_proj.weight": {NKV * dh, H},
		p + "self_attn.v_proj.weight": {NKV * dh, H}, p + "self_attn.o_proj.weight": {H, NH * dh},
		p + block + ".gate.weight": {E, H},
	}
	if fused {
		gu, dn := arch.FusedExperts()
		s[p+gu], s[p+dn] = []int64{E, 2 * I, H}, []int64{E, H, I}
	} else {
		for e := range E {
			x := fmt.Sprintf("%s%s.experts.%d.", p, block, e)
			s[x+proj[0]+".weight"], s[x+proj[1]+".weight"], s[x+proj[2]+".weight"] = []int64{I, H}, []int64{I, H}, []int64{H, I}
		}
	}
	for n, d := range norms {
		s[p+n+".weight"] = []int64{d}
	}
	return benchGraph(b, config, s, weights.F32)
}

// BenchmarkMixtralLayer runs one Mixtral-8x7B-shaped layer (hidden 4096,
// 32 heads of 128, 8 KV heads, 8 experts of 14336, top-2; experts one
// tensor each, as on the Hub) at sequence 256.
func BenchmarkMixtralLayer(b *testing.B) {
	cfg := `{"architectures":["MixtralModel"],"model_type":"mixtral","hidden_size":4096,"intermediate_size":14336,
		"num_hidden_layers":1,"num_attention_heads":32,"num_key_value_heads":8,"num_local_experts":8,"num_experts_per_tok":2,
		"vocab_size":1024,"rms_norm_eps":1e-5,"rope_theta":1000000.0,"max_position_embeddings":32768,"sliding_window":null}`
	benchRun(b, moeLayerGraph(b, cfg, arch.MixtralMoE, [3]string{arch.MixtralExpertGate, arch.MixtralExpertUp, arch.MixtralExpertDown},
		false, 4096, 8, 14336, 32, 8, 128, nil), 256)
}

// BenchmarkQwen3MoELayer runs one Qwen3-30B-A3B-shaped layer (hidden 2048,
// 32 heads of 128, 4 KV heads, q/k norms, 128 experts of 768, top-8
// renormalized; experts fused, as transformers 5 holds them) at sequence
// 256.
func BenchmarkQwen3MoELayer(b *testing.B) {
	cfg := `{"architectures":["Qwen3MoeModel"],"model_type":"qwen3_moe","hidden_size":2048,"intermediate_size":6144,
		"moe_intermediate_size":768,"num_hidden_layers":1,"num_attention_heads":32,"num_key_value_heads":4,"head_dim":128,
		"num_experts":128,"num_experts_per_tok":8,"norm_topk_prob":true,"vocab_size":1024,"rms_norm_eps":1e-6,
		"rope_theta":1000000.0,"max_position_embeddings":40960}`
	benchRun(b, moeLayerGraph(b, cfg, arch.QwenMoE, [3]string{arch.QwenExpertGate, arch.QwenExpertUp, arch.QwenExpertDown},
		true, 2048, 128, 768, 32, 4, 128, map[string]int64{"self_attn.q_norm": 128, "self_attn.k_norm": 128}), 256)
}
