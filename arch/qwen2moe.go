package arch

import (
	"encoding/json"
	"fmt"
)

func init() {
	register(&Family{Name: "qwen2_moe", ModelTypes: []string{"qwen2_moe"}, ClassPrefixes: []string{"Qwen2Moe"},
		Buffers: []string{"rotary_emb.inv_freq"}, Role: moeRole, Parse: parseQwen2MoE})
}

// Qwen2MoEConfig is transformers' Qwen2MoeConfig: Qwen2's layers (q/k/v
// biases unless qkv_bias is false) whose MLP, on the layers Sparse names,
// is a router over num_experts experts of moe_intermediate_size, each token
// going to num_experts_per_tok of them (their probabilities renormalized
// only with norm_topk_prob), plus a shared expert of
// shared_expert_intermediate_size every token goes through, scaled by
// sigmoid(shared_expert_gate(x)). The other layers have a dense MLP of
// intermediate_size.
type Qwen2MoEConfig struct {
	LlamaConfig
	MoE
	// QKVBias: q_proj, k_proj and v_proj have biases (qkv_bias, default
	// true).
	QKVBias bool
	// UseSlidingWindow is use_sliding_window (the released models have it
	// false; the forward pass refuses it).
	UseSlidingWindow bool
}

// Qwen2MoE returns the Qwen2-MoE view of the config, nil for another
// family.
func (c *Config) Qwen2MoE() *Qwen2MoEConfig {
	q, _ := c.Params.(*Qwen2MoEConfig)
	return q
}

func parseQwen2MoE(c *Config, raw []byte) (Params, error) {
	q := &Qwen2MoEConfig{LlamaConfig: LlamaConfig{HiddenAct: "silu", RMSNormEps: 1e-6, RopeTheta: 10000,
		MaxPositionEmbeddings: 32768, AttentionBias: true}, QKVBias: true}
	if err := q.parse(c, raw, "qwen2_moe", 0); err != nil {
		return nil, err
	}
	f := struct {
		Experts            int   `json:"num_experts"`
		TopK               int   `json:"num_experts_per_tok"`
		MoEIntermediate    int   `json:"moe_intermediate_size"`
		SharedIntermediate int   `json:"shared_expert_intermediate_size"`
		NormTopKProb       bool  `json:"norm_topk_prob"`
		QKVBias            *bool `json:"qkv_bias"`
		UseSlidingWindow   bool  `json:"use_sliding_window"`
	}{Experts: 60, TopK: 4, MoEIntermediate: 1408, SharedIntermediate: 5632}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: qwen2_moe: %v", ErrConfig, err)
	}
	q.MoE = MoE{Experts: f.Experts, TopK: f.TopK, ExpertIntermediate: f.MoEIntermediate,
		SharedIntermediate: f.SharedIntermediate, NormTopK: f.NormTopKProb}
	if f.QKVBias != nil {
		q.QKVBias = *f.QKVBias
	}
	q.UseSlidingWindow = f.UseSlidingWindow
	k := checker{family: "qwen2_moe"}
	q.check(&k, "num_experts")
	if q.Experts > 0 {
		k.size("moe_intermediate_size", q.ExpertIntermediate)
		k.size("shared_expert_intermediate_size", q.SharedIntermediate)
	}
	if err := q.parseSparse(&k, raw, q.NumHiddenLayers); err != nil {
		return nil, err
	}
	return q, k.err
}

// Blocks implements Params: heads as Llama's; FFN neurons in the experts
// (moe_intermediate_size), the shared experts
// (shared_expert_intermediate_size) and the dense MLPs (intermediate_size).
func (q *Qwen2MoEConfig) Blocks() Blocks {
	return moeBlocks(&q.LlamaConfig, &q.MoE, QwenMoE, QwenExpertGate, QwenExpertUp, QwenExpertDown, "moe_intermediate_size")
}

// ParamCount is the number of parameters of a checkpoint: all experts of
// every MoE layer, the shared experts and their gates, the routers, the
// dense MLPs, attention, norms, the embedding and an untied head.
func (q *Qwen2MoEConfig) ParamCount() int64 {
	return moeParamCount(&q.LlamaConfig, &q.MoE, q.QKVBias, false, false)
}
