package arch

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// TestMoEConfig: each MoE family's defaults as its transformers
// configuration has them, the sparse layers as mlp_only_layers and
// decoder_sparse_step choose them, and impossible values refused by field.
func TestMoEConfig(t *testing.T) {
	const base = `"vocab_size":10,"hidden_size":8,"num_hidden_layers":4,"num_attention_heads":2,"intermediate_size":12`
	c, err := ParseConfig([]byte(`{"model_type":"mixtral",` + base + `}`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Mixtral()
	if m == nil || c.Family() != "mixtral" || m.Experts != 8 || m.TopK != 2 || !m.NormTopK || m.ExpertIntermediate != 12 ||
		m.RopeTheta != 1e6 || m.RMSNormEps != 1e-5 || m.TieWordEmbeddings || m.SlidingWindow != 0 ||
		!slices.Equal(m.Sparse, []bool{true, true, true, true}) {
		t.Errorf("mixtral defaults: %+v", m)
	}
	c, err = ParseConfig([]byte(`{"model_type":"qwen2_moe",` + base + `}`))
	if err != nil {
		t.Fatal(err)
	}
	q2 := c.Qwen2MoE()
	if q2 == nil || q2.Experts != 60 || q2.TopK != 4 || q2.NormTopK || q2.ExpertIntermediate != 1408 ||
		q2.SharedIntermediate != 5632 || !q2.QKVBias || q2.RopeTheta != 10000 || !slices.Equal(q2.Sparse, []bool{true, true, true, true}) {
		t.Errorf("qwen2_moe defaults: %+v", q2)
	}
	c, err = ParseConfig([]byte(`{"model_type":"qwen3_moe",` + base + `,"norm_topk_prob":true,"num_experts":16}`))
	if err != nil {
		t.Fatal(err)
	}
	q3 := c.Qwen3MoE()
	if q3 == nil || q3.Experts != 16 || q3.TopK != 8 || !q3.NormTopK || q3.ExpertIntermediate != 768 || q3.AttentionBias ||
		q3.HeadDim != 4 || q3.SharedIntermediate != 0 {
		t.Errorf("qwen3_moe: %+v", q3)
	}
	for _, s := range []struct {
		config string
		want   []bool
	}{
		{`"mlp_only_layers":[0,2]`, []bool{false, true, false, true}},
		{`"decoder_sparse_step":2`, []bool{false, true, false, true}},
		{`"decoder_sparse_step":2,"mlp_only_layers":[3]`, []bool{false, true, false, false}},
		{`"num_experts":0`, []bool{false, false, false, false}},
	} {
		for _, mt := range []string{"qwen2_moe", "qwen3_moe"} {
			c, err := ParseConfig([]byte(`{"model_type":"` + mt + `",` + base + `,` + s.config + `}`))
			if err != nil {
				t.Errorf("%s %s: %v", mt, s.config, err)
				continue
			}
			var got []bool
			if mt == "qwen2_moe" {
				got = c.Qwen2MoE().Sparse
			} else {
				got = c.Qwen3MoE().Sparse
			}
			if !slices.Equal(got, s.want) {
				t.Errorf("%s %s: sparse %v, want %v", mt, s.config, got, s.want)
			}
		}
	}
	for _, bad := range []struct{ mt, config, field string }{
		{"mixtral", `"num_local_experts":0`, "num_local_experts"},
		{"mixtral", `"num_experts_per_tok":9`, "num_experts_per_tok"},
		{"mixtral", `"num_experts_per_tok":0`, "num_experts_per_tok"},
		{"qwen2_moe", `"num_experts":4,"num_experts_per_tok":5`, "num_experts_per_tok"},
		{"qwen2_moe", `"moe_intermediate_size":0`, "moe_intermediate_size"},
		{"qwen2_moe", `"shared_expert_intermediate_size":-1`, "shared_expert_intermediate_size"},
		{"qwen2_moe", `"mlp_only_layers":[4]`, "mlp_only_layers"},
		{"qwen3_moe", `"decoder_sparse_step":0`, "decoder_sparse_step"},
		{"qwen3_moe", `"num_experts":-1`, "num_experts"},
		{"qwen3_moe", `"mlp_only_layers":[-1]`, "mlp_only_layers"},
		{"qwen3_moe", `"num_key_value_heads":3`, "num_key_value_heads"},
	} {
		_, err := ParseConfig([]byte(`{"model_type":"` + bad.mt + `",` + base + `,` + bad.config + `}`))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), bad.mt) || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("%s %s: %v", bad.mt, bad.config, err)
		}
	}
}

// TestMoERoles: routers and Qwen2-MoE's shared expert gate are routers
// (kept float by quantization, left whole by pruning), with or without a
// config; every expert's projections and the shared expert's are body
// Linears.
func TestMoERoles(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"model_type":"qwen2_moe","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Role{
		"model.layers.0.block_sparse_moe.gate.weight":         RoleRouter,
		"model.layers.3.mlp.gate.weight":                      RoleRouter,
		"model.layers.3.mlp.shared_expert_gate.weight":        RoleRouter,
		"model.layers.0.block_sparse_moe.experts.7.w1.weight": RoleLinear,
		"model.layers.0.block_sparse_moe.experts.7.w2.weight": RoleLinear,
		"model.layers.1.mlp.experts.12.down_proj.weight":      RoleLinear,
		"model.layers.1.mlp.shared_expert.gate_proj.weight":   RoleLinear,
		"model.layers.1.mlp.gate_proj.weight":                 RoleLinear,
		"model.layers.1.self_attn.q_norm.weight":              RoleNorm,
		"model.layers.0.mlp.experts.gate_up_proj":             RoleExperts,
		"model.layers.2.mlp.experts.down_proj":                RoleExperts,
	} {
		shape := []int64{4, 8}
		switch want {
		case RoleNorm:
			shape = []int64{4}
		case RoleExperts:
			shape = []int64{3, 4, 8}
		}
		for _, c := range []*Config{cfg, nil} {
			if got := RoleOf(c, &weights.Tensor{Name: name, DType: weights.BF16, Shape: shape}); got != want {
				t.Errorf("%s (config %v): %s, want %s", name, c != nil, got, want)
			}
		}
	}
}

// TestMoEBlocks: heads are pruned as Llama's; FFN neurons in groups: the
// experts of the sparse layers (width in moe_intermediate_size, Mixtral's
// intermediate_size), Qwen2-MoE's shared experts, the dense layers' MLPs.
func TestMoEBlocks(t *testing.T) {
	const base = `"vocab_size":10,"hidden_size":8,"num_hidden_layers":3,"num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":8,"head_dim":4`
	for _, c := range []struct {
		config string
		want   []FFNGroup
	}{
		{`"model_type":"mixtral","num_local_experts":3`, []FFNGroup{{Field: "intermediate_size", Width: 8, Layers: []int{0, 1, 2}, Units: 3,
			Up:    []Slice{{"block_sparse_moe.experts.%d.w1.weight", 0, 0}, {"block_sparse_moe.experts.%d.w3.weight", 0, 0}},
			Down:  []Slice{{"block_sparse_moe.experts.%d.w2.weight", 1, 0}},
			Fused: []string{"mlp.experts.gate_up_proj", "mlp.experts.down_proj"}}}},
		{`"model_type":"qwen2_moe","num_experts":4,"moe_intermediate_size":6,"shared_expert_intermediate_size":10,"mlp_only_layers":[1]`, []FFNGroup{
			{Field: "moe_intermediate_size", Width: 6, Layers: []int{0, 2}, Units: 4,
				Up:    []Slice{{"mlp.experts.%d.gate_proj.weight", 0, 0}, {"mlp.experts.%d.up_proj.weight", 0, 0}},
				Down:  []Slice{{"mlp.experts.%d.down_proj.weight", 1, 0}},
				Fused: []string{"mlp.experts.gate_up_proj", "mlp.experts.down_proj"}},
			{Field: "shared_expert_intermediate_size", Width: 10, Layers: []int{0, 2}, Units: 1,
				Up:   []Slice{{"mlp.shared_expert.gate_proj.weight", 0, 0}, {"mlp.shared_expert.up_proj.weight", 0, 0}},
				Down: []Slice{{"mlp.shared_expert.down_proj.weight", 1, 0}}},
			{Field: "intermediate_size", Width: 8, Layers: []int{1}, Units: 1,
				Up:   []Slice{{"mlp.gate_proj.weight", 0, 0}, {"mlp.up_proj.weight", 0, 0}},
				Down: []Slice{{"mlp.down_proj.weight", 1, 0}}}}},
		{`"model_type":"qwen3_moe","num_experts":0`, []FFNGroup{{Field: "intermediate_size", Width: 8, Layers: []int{0, 1, 2}, Units: 1,
			Up:   []Slice{{"mlp.gate_proj.weight", 0, 0}, {"mlp.up_proj.weight", 0, 0}},
			Down: []Slice{{"mlp.down_proj.weight", 1, 0}}}}},
	} {
		cfg, err := ParseConfig([]byte(`{` + base + `,` + c.config + `}`))
		if err != nil {
			t.Fatal(err)
		}
		b := cfg.Params.Blocks()
		if b.Heads != 2 || b.KVHeads != 1 || b.HeadDim != 4 || len(b.Query) == 0 || len(b.Up) != 0 || len(b.Down) != 0 ||
			!slices.EqualFunc(b.FFNGroups, c.want, func(a, b FFNGroup) bool {
				return a.Field == b.Field && a.Width == b.Width && a.Units == b.Units && slices.Equal(a.Layers, b.Layers) &&
					slices.Equal(a.Up, b.Up) && slices.Equal(a.Down, b.Down) && slices.Equal(a.Fused, b.Fused)
			}) {
			t.Errorf("%s: %+v", c.config, b)
		}
	}
}

// FusedExpertSlices splits gate_up_proj [E, 2I, H] into 2E matrices I×H
// (each expert's gate, then its up) and down_proj [E, H, I] into E
// matrices H×I; other names and shapes are not fused experts.
func TestFusedExpertSlices(t *testing.T) {
	for _, c := range []struct {
		name    string
		shape   []int64
		n       int
		out, in int64
		ok      bool
	}{
		{"model.layers.0.mlp.experts.gate_up_proj", []int64{8, 32, 16}, 16, 16, 16, true},
		{"model.layers.3.mlp.experts.down_proj", []int64{8, 16, 24}, 8, 16, 24, true},
		{"model.layers.0.mlp.experts.gate_up_proj", []int64{8, 31, 16}, 0, 0, 0, false},
		{"model.layers.0.mlp.experts.gate_up_proj", []int64{32, 16}, 0, 0, 0, false},
		{"model.layers.0.mlp.experts.down_proj", []int64{0, 16, 24}, 0, 0, 0, false},
		{"model.layers.0.mlp.experts.0.down_proj.weight", []int64{2, 16, 24}, 0, 0, 0, false},
		{"model.layers.0.mlp.gate_up_proj.weight", []int64{2, 16, 24}, 0, 0, 0, false},
	} {
		n, out, in, ok := FusedExpertSlices(c.name, c.shape)
		if n != c.n || out != c.out || in != c.in || ok != c.ok {
			t.Errorf("%s %v: %d × %d×%d %v, want %d × %d×%d %v", c.name, c.shape, n, out, in, ok, c.n, c.out, c.in, c.ok)
		}
	}
}
