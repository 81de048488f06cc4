package arch

import (
	"encoding/json"
	"fmt"
)

func init() {
	register(&Family{Name: "mixtral", ModelTypes: []string{"mixtral"}, ClassPrefixes: []string{"Mixtral"},
		Buffers: []string{"rotary_emb.inv_freq"}, Role: moeRole, Parse: parseMixtral})
}

// MixtralConfig is transformers' MixtralConfig: Mistral's layers (sliding
// window on every layer when sliding_window is set) whose MLP is a sparse
// MoE block (block_sparse_moe): a router over num_local_experts experts,
// each token going to the num_experts_per_tok with the largest routing
// probabilities, renormalized to sum to 1; each expert a gated MLP w2(act(
// w1(x)) · w3(x)) of intermediate_size.
type MixtralConfig struct {
	LlamaConfig
	MoE
}

// Mixtral returns the Mixtral view of the config, nil for another family.
func (c *Config) Mixtral() *MixtralConfig {
	m, _ := c.Params.(*MixtralConfig)
	return m
}

func parseMixtral(c *Config, raw []byte) (Params, error) {
	m := &MixtralConfig{LlamaConfig: LlamaConfig{HiddenAct: "silu", RMSNormEps: 1e-5, RopeTheta: 1e6,
		MaxPositionEmbeddings: 4096 * 32}, MoE: MoE{Experts: 8, TopK: 2, NormTopK: true}}
	if err := m.parse(c, raw, "mixtral", 0); err != nil {
		return nil, err
	}
	var f struct {
		Experts *int `json:"num_local_experts"`
		TopK    *int `json:"num_experts_per_tok"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: mixtral: %v", ErrConfig, err)
	}
	if f.Experts != nil {
		m.Experts = *f.Experts
	}
	if f.TopK != nil {
		m.TopK = *f.TopK
	}
	k := checker{family: "mixtral"}
	k.positive("num_local_experts", m.Experts)
	m.check(&k, "num_local_experts")
	m.ExpertIntermediate = m.IntermediateSize
	m.Sparse = make([]bool, m.NumHiddenLayers)
	for i := range m.Sparse {
		m.Sparse[i] = true
	}
	return m, k.err
}

// Blocks implements Params: heads as Llama's; FFN neurons in the experts,
// whose width is intermediate_size.
func (m *MixtralConfig) Blocks() Blocks {
	return moeBlocks(&m.LlamaConfig, &m.MoE, MixtralMoE, MixtralExpertGate, MixtralExpertUp, MixtralExpertDown, "intermediate_size")
}

// ParamCount is the number of parameters of a checkpoint: all experts of
// every layer, the routers, attention, norms, the embedding and an untied
// head.
func (m *MixtralConfig) ParamCount() int64 {
	return moeParamCount(&m.LlamaConfig, &m.MoE, false, false, false)
}
