package arch

import (
	"encoding/json"
	"fmt"
)

func init() {
	register(&Family{Name: "qwen3_moe", ModelTypes: []string{"qwen3_moe"}, ClassPrefixes: []string{"Qwen3Moe"},
		Buffers: []string{"rotary_emb.inv_freq"}, Role: moeRole, Parse: parseQwen3MoE})
}

// Qwen3MoEConfig is transformers' Qwen3MoeConfig: Qwen3's layers (q_norm
// and k_norm over each head before the rotary embedding, no bias unless
// attention_bias) whose MLP, on the layers Sparse names, is a router over
// num_experts experts of moe_intermediate_size, each token going to
// num_experts_per_tok of them (renormalized with norm_topk_prob). The other
// layers have a dense MLP of intermediate_size.
type Qwen3MoEConfig struct {
	LlamaConfig
	MoE
	// UseSlidingWindow is use_sliding_window (the released models have it
	// false; the forward pass refuses it).
	UseSlidingWindow bool
}

// Qwen3MoE returns the Qwen3-MoE view of the config, nil for another
// family.
func (c *Config) Qwen3MoE() *Qwen3MoEConfig {
	q, _ := c.Params.(*Qwen3MoEConfig)
	return q
}

func parseQwen3MoE(c *Config, raw []byte) (Params, error) {
	q := &Qwen3MoEConfig{LlamaConfig: LlamaConfig{HiddenAct: "silu", RMSNormEps: 1e-6, RopeTheta: 10000,
		MaxPositionEmbeddings: 32768}}
	if err := q.parse(c, raw, "qwen3_moe", 0); err != nil {
		return nil, err
	}
	f := struct {
		Experts          int  `json:"num_experts"`
		TopK             int  `json:"num_experts_per_tok"`
		MoEIntermediate  int  `json:"moe_intermediate_size"`
		NormTopKProb     bool `json:"norm_topk_prob"`
		UseSlidingWindow bool `json:"use_sliding_window"`
	}{Experts: 128, TopK: 8, MoEIntermediate: 768}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: qwen3_moe: %v", ErrConfig, err)
	}
	q.MoE = MoE{Experts: f.Experts, TopK: f.TopK, ExpertIntermediate: f.MoEIntermediate, NormTopK: f.NormTopKProb}
	q.UseSlidingWindow = f.UseSlidingWindow
	k := checker{family: "qwen3_moe"}
	q.check(&k, "num_experts")
	if q.Experts > 0 {
		k.size("moe_intermediate_size", q.ExpertIntermediate)
	}
	if err := q.parseSparse(&k, raw, q.NumHiddenLayers); err != nil {
		return nil, err
	}
	return q, k.err
}

// Blocks implements Params: heads as Llama's (q_norm and k_norm, over one
// head, are left as they are); FFN neurons in the experts
// (moe_intermediate_size) and the dense MLPs (intermediate_size).
func (q *Qwen3MoEConfig) Blocks() Blocks {
	return moeBlocks(&q.LlamaConfig, &q.MoE, QwenMoE, QwenExpertGate, QwenExpertUp, QwenExpertDown, "moe_intermediate_size")
}

// ParamCount is the number of parameters of a checkpoint: all experts of
// every MoE layer, the routers, the dense MLPs, attention with its q/k
// norms, norms, the embedding and an untied head.
func (q *Qwen3MoEConfig) ParamCount() int64 {
	return moeParamCount(&q.LlamaConfig, &q.MoE, q.AttentionBias, q.AttentionBias, true)
}
