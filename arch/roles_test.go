package arch

import (
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

func TestRoles(t *testing.T) {
	gpt2, err := ParseConfig([]byte(`{"model_type":"gpt2","vocab_size":10,"n_embd":4,"n_layer":1,"n_head":1,"n_positions":4}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		dtype weights.DType
		shape []int64
		role  Role
	}{
		{"bert.embeddings.word_embeddings.weight", weights.F32, []int64{10, 4}, RoleEmbedding},
		{"bert.embeddings.LayerNorm.gamma", weights.F32, []int64{4}, RoleNorm},
		{"bert.encoder.layer.0.attention.self.query.weight", weights.F16, []int64{4, 4}, RoleLinear},
		{"bert.encoder.layer.0.attention.self.query.bias", weights.F32, []int64{4}, RoleBias},
		{"bert.embeddings.position_ids", weights.I64, []int64{1, 4}, RoleBuffer},
		{"classifier.weight", weights.F32, []int64{2, 4}, RoleHead},
		{"cls.predictions.transform.dense.weight", weights.F32, []int64{4, 4}, RoleHead},
		{"transformer.wte.weight", weights.F32, []int64{10, 4}, RoleEmbedding},
		{"transformer.h.0.ln_1.weight", weights.F32, []int64{4}, RoleNorm},
		{"transformer.h.0.attn.bias", weights.F32, []int64{1, 1, 4, 4}, RoleBuffer},
		{"transformer.h.0.attn.c_attn.weight", weights.F32, []int64{4, 12}, RoleLinear},
		{"lm_head.weight", weights.BF16, []int64{10, 4}, RoleHead},
		{"model.norm.weight", weights.F32, []int64{4}, RoleNorm},
		{"model.layers.0.mlp.gate_proj.weight", weights.BF16, []int64{8, 4}, RoleLinear},
		{"model.layers.0.self_attn.rotary_emb.inv_freq", weights.F32, []int64{2}, RoleBuffer},
		{"some.counter", weights.I32, []int64{1}, RoleOther},
	} {
		tt := &weights.Tensor{Name: c.name, DType: c.dtype, Shape: c.shape}
		if got := RoleOf(gpt2, tt); got != c.role {
			t.Errorf("%s: %s, want %s", c.name, got, c.role)
		}
	}
	w := &weights.Tensor{Name: "transformer.h.0.attn.c_attn.weight", DType: weights.F32, Shape: []int64{4, 12}}
	if out, in := LinearDims(gpt2, w); out != 12 || in != 4 || !IsConv1D(gpt2, w.Name) {
		t.Errorf("conv1d dims %d %d", out, in)
	}
	if IsConv1D(nil, w.Name) {
		t.Error("Conv1D without a gpt2 config")
	}
}

// TestRolesWithoutConfig: a lone weight file (no config) gets the roles
// every family's names say, and a family's config puts its own names first.
func TestRolesWithoutConfig(t *testing.T) {
	for name, want := range map[string]Role{
		"cls.predictions.transform.dense.weight": RoleHead,
		"bert.embeddings.LayerNorm.beta":         RoleNorm,
		"h.0.ln_cross_attn.weight":               RoleNorm,
		"wpe.weight":                             RoleEmbedding,
		"model.layers.0.self_attn.q_proj.weight": RoleLinear,
		"score.weight":                           RoleHead,
	} {
		shape := []int64{4, 4}
		if want == RoleNorm {
			shape = []int64{4}
		}
		if got := RoleOf(nil, &weights.Tensor{Name: name, DType: weights.F32, Shape: shape}); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}
