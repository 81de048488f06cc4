package arch

import (
	"encoding/json"
	"fmt"
	"strings"
)

// MoE is what a mixture-of-experts decoder (Mixtral, Qwen2-MoE, Qwen3-MoE)
// adds to the Llama family's fields: the layers whose MLP is a router
// choosing TopK of Experts gated MLPs for each token (plus, for
// Qwen2-MoE, a shared expert every token goes through).
type MoE struct {
	// Experts is the number of routed experts of an MoE layer
	// (num_local_experts, num_experts).
	Experts int
	// TopK is the number of experts each token is routed to
	// (num_experts_per_tok).
	TopK int
	// ExpertIntermediate is the width of each expert's MLP (Mixtral's
	// intermediate_size, Qwen's moe_intermediate_size).
	ExpertIntermediate int
	// SharedIntermediate is the width of Qwen2-MoE's shared expert, 0 for a
	// family without one.
	SharedIntermediate int
	// NormTopK: the top-k routing probabilities are divided by their sum
	// (always for Mixtral; norm_topk_prob for Qwen).
	NormTopK bool
	// Sparse says which layers are MoE layers; the others have a dense
	// gated MLP of intermediate_size (Qwen's mlp_only_layers and
	// decoder_sparse_step).
	Sparse []bool
}

// Tensor names of the MoE layers, relative to the layer's prefix. Qwen2-MoE
// and Qwen3-MoE put the router and experts under "mlp.", Mixtral under
// "block_sparse_moe.".
const (
	MixtralMoE = "block_sparse_moe"
	QwenMoE    = "mlp"
	// MoERouter is the router under the MoE block; MoEExperts holds
	// experts.<e>. (see MoEExpert).
	MoERouter  = "gate"
	MoEExperts = "experts"
	// A Mixtral expert's w1 (gate), w2 (down) and w3 (up).
	MixtralExpertGate = "w1"
	MixtralExpertDown = "w2"
	MixtralExpertUp   = "w3"
	// A Qwen expert's and shared expert's projections.
	QwenExpertGate = "gate_proj"
	QwenExpertUp   = "up_proj"
	QwenExpertDown = "down_proj"
	// Qwen2-MoE's shared expert and its sigmoid gate, under mlp.
	Qwen2MoESharedExpert = "shared_expert"
	Qwen2MoESharedGate   = "shared_expert_gate"
	// FusedMoE is the block of transformers 5's layout for every MoE family
	// (Mixtral's block_sparse_moe became mlp): the router mlp.gate and the
	// experts fused into two 3-D parameters under mlp.experts, FusedGateUp
	// [experts, 2×intermediate, hidden] (each expert's gate rows, then its
	// up rows) and FusedDown [experts, hidden, intermediate]. Expert e's
	// slices are the nn.Linear weights of its per-expert layout.
	FusedMoE    = "mlp"
	FusedGateUp = "gate_up_proj"
	FusedDown   = "down_proj"
)

// FusedExperts are the names of the fused experts of transformers 5's
// layout (gate_up_proj, down_proj), relative to the layer's prefix.
func FusedExperts() (gateUp, down string) {
	p := FusedMoE + "." + MoEExperts + "."
	return p + FusedGateUp, p + FusedDown
}

// ExpertNames returns the per-expert layout's names of an MoE family's
// config: the block holding the router and experts.<e>. (relative to the
// layer's prefix) and an expert's gate, up and down projections; ok is
// false for another family.
func ExpertNames(cfg *Config) (block, gate, up, down string, ok bool) {
	switch {
	case cfg == nil:
	case cfg.Mixtral() != nil:
		return MixtralMoE, MixtralExpertGate, MixtralExpertUp, MixtralExpertDown, true
	case cfg.Qwen2MoE() != nil, cfg.Qwen3MoE() != nil:
		return QwenMoE, QwenExpertGate, QwenExpertUp, QwenExpertDown, true
	}
	return "", "", "", "", false
}

// FusedExpertSlices returns how a fused experts tensor (RoleExperts) of the
// given shape splits into the Linear weights of the per-expert layout: n
// matrices of out×in, one after the other (gate_up_proj: each expert's
// gate, then its up; down_proj: each expert's down). ok is false for
// another name or a shape that is not [experts, rows, cols] (with an even
// number of rows for gate_up_proj).
func FusedExpertSlices(name string, shape []int64) (n int, out, in int64, ok bool) {
	if len(shape) != 3 || shape[0] <= 0 || shape[1] <= 0 || shape[2] <= 0 || int64(int(shape[0])) != shape[0] {
		return 0, 0, 0, false
	}
	switch {
	case strings.HasSuffix(name, "."+MoEExperts+"."+FusedGateUp) && shape[1]%2 == 0:
		return 2 * int(shape[0]), shape[1] / 2, shape[2], true
	case strings.HasSuffix(name, "."+MoEExperts+"."+FusedDown):
		return int(shape[0]), shape[1], shape[2], true
	}
	return 0, 0, 0, false
}

// MoEExpert is the prefix of expert e of the MoE block block ("mlp",
// "block_sparse_moe"), relative to the layer's prefix.
func MoEExpert(block string, e int) string { return fmt.Sprintf("%s.%s.%d.", block, MoEExperts, e) }

// moeRole gives the routers of every MoE family RoleRouter: a 2-D weight
// that quantization and pruning would otherwise take for a body Linear;
// and transformers 5's fused experts RoleExperts.
func moeRole(name string) (Role, bool) {
	gateUp, down := FusedExperts()
	if strings.Contains(name, "layers.") && (strings.HasSuffix(name, "."+gateUp) || strings.HasSuffix(name, "."+down)) {
		return RoleExperts, true
	}
	for _, s := range []string{"." + MixtralMoE + "." + MoERouter + ".weight", "." + QwenMoE + "." + MoERouter + ".weight",
		"." + QwenMoE + "." + Qwen2MoESharedGate + ".weight"} {
		if strings.HasSuffix(name, s) && strings.Contains(name, "layers.") {
			return RoleRouter, true
		}
	}
	return "", false
}

// parseSparse reads Qwen's mlp_only_layers and decoder_sparse_step into
// m.Sparse: layer i is an MoE layer when it is not in mlp_only_layers,
// there are experts, and (i+1) is a multiple of decoder_sparse_step.
func (m *MoE) parseSparse(k *checker, raw []byte, layers int) error {
	var f struct {
		DecoderSparseStep *int  `json:"decoder_sparse_step"`
		MLPOnlyLayers     []int `json:"mlp_only_layers"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, k.family, err)
	}
	step := 1
	if f.DecoderSparseStep != nil {
		step = *f.DecoderSparseStep
	}
	k.positive("decoder_sparse_step", step)
	dense := map[int]bool{}
	for _, l := range f.MLPOnlyLayers {
		if l < 0 || l >= layers {
			k.fail("mlp_only_layers names layer %d of %d", l, layers)
		}
		dense[l] = true
	}
	m.Sparse = make([]bool, layers)
	for i := range m.Sparse {
		m.Sparse[i] = m.Experts > 0 && step > 0 && !dense[i] && (i+1)%step == 0
	}
	return nil
}

// check refuses impossible expert counts.
func (m *MoE) check(k *checker, expertsField string) {
	k.nonNegative(expertsField, m.Experts)
	if m.Experts > maxSize {
		k.fail("%s %d is larger than any model's", expertsField, m.Experts)
	}
	if m.Experts > 0 {
		k.positive("num_experts_per_tok", m.TopK)
		if m.TopK > m.Experts {
			k.fail("num_experts_per_tok %d is more than the %d experts (%s)", m.TopK, m.Experts, expertsField)
		}
	}
}

// FFNGroup is one kind of MLP of the layers of an MoE family, for FFN
// pruning: every MLP of the group has Width neurons, the value of the
// config field Field.
type FFNGroup struct {
	Field string
	Width int
	// Layers are the layers that have the group's MLPs.
	Layers []int
	// Units is the number of MLPs of the group in each of those layers (the
	// experts), each pruned on its own; the names of Up and Down hold a %d
	// for the unit's number when Units is above 1.
	Units int
	// Up cuts neurons on the input side, Down on the output side.
	Up, Down []Slice
	// Fused names the tensors (relative to the layer's prefix) of the
	// group's MLPs in transformers 5's fused layout, whose experts FFN
	// pruning cannot cut each its own way: a model that has them is
	// refused.
	Fused []string
}

// moeBlocks is the Llama layers' Blocks for an MoE family: attention heads
// as Llama's, and the FFN neurons in groups: the routed experts (under
// block, projections gate, up and down, width in expertField) of the
// sparse layers, Qwen2-MoE's shared experts, and the dense MLPs of the
// other layers.
func moeBlocks(l *LlamaConfig, m *MoE, block, gate, up, down, expertField string) Blocks {
	b := l.Blocks()
	b.Up, b.Down, b.IntermediateField = nil, nil, ""
	var sparse, dense []int
	for i, s := range m.Sparse {
		if s {
			sparse = append(sparse, i)
		} else {
			dense = append(dense, i)
		}
	}
	gated := func(prefix, gate, up, down string) ([]Slice, []Slice) {
		return []Slice{{prefix + gate + ".weight", 0, 0}, {prefix + up + ".weight", 0, 0}}, []Slice{{prefix + down + ".weight", 1, 0}}
	}
	if len(sparse) > 0 {
		u, d := gated(block+"."+MoEExperts+".%d.", gate, up, down)
		gu, dn := FusedExperts()
		b.FFNGroups = append(b.FFNGroups, FFNGroup{Field: expertField, Width: m.ExpertIntermediate, Layers: sparse,
			Units: m.Experts, Up: u, Down: d, Fused: []string{gu, dn}})
		if m.SharedIntermediate > 0 {
			u, d := gated(QwenMoE+"."+Qwen2MoESharedExpert+".", QwenExpertGate, QwenExpertUp, QwenExpertDown)
			b.FFNGroups = append(b.FFNGroups, FFNGroup{Field: "shared_expert_intermediate_size", Width: m.SharedIntermediate,
				Layers: sparse, Units: 1, Up: u, Down: d})
		}
	}
	if len(dense) > 0 {
		b.FFNGroups = append(b.FFNGroups, FFNGroup{Field: "intermediate_size", Width: l.IntermediateSize, Layers: dense,
			Units: 1, Up: []Slice{{LlamaGate + ".weight", 0, 0}, {LlamaUp + ".weight", 0, 0}}, Down: []Slice{{LlamaDown + ".weight", 1, 0}}})
	}
	return b
}

// moeParamCount counts the parameters a checkpoint of an MoE family has
// (per expert or fused alike): every expert of every MoE layer, the
// routers, the attention (biases when
// qkvBias, o_proj's when oBias, Qwen3's q/k norms when qkNorm), norms, the token embedding, and
// the head unless tied.
func moeParamCount(l *LlamaConfig, m *MoE, qkvBias, oBias, qkNorm bool) int64 {
	H, V := int64(l.HiddenSize), int64(l.VocabSize)
	q, kv := int64(l.NumAttentionHeads*l.HeadDim), int64(l.NumKeyValueHeads*l.HeadDim)
	n := V * H
	if !l.TieWordEmbeddings {
		n += V * H
	}
	n += H // final norm
	for _, sparse := range m.Sparse {
		n += H*(q+2*kv) + q*H + 2*H
		if qkvBias {
			n += q + 2*kv
		}
		if oBias {
			n += H
		}
		if qkNorm {
			n += 2 * int64(l.HeadDim)
		}
		if !sparse {
			n += 3 * H * int64(l.IntermediateSize)
			continue
		}
		E := int64(m.Experts)
		n += E*H + E*3*H*int64(m.ExpertIntermediate)
		if m.SharedIntermediate > 0 {
			n += 3*H*int64(m.SharedIntermediate) + H
		}
	}
	return n
}
