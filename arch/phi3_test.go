package arch

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// TestPhi3Config: Phi3Config's defaults, the rotary dimensions of
// partial_rotary_factor, LongRoPE's attention factor (from
// max_position_embeddings / original_max_position_embeddings, as
// _compute_longrope_parameters derives it), the "su" name, transformers 5's
// rope_parameters, sliding_window on every layer, and the values
// Phi3Config refuses.
func TestPhi3Config(t *testing.T) {
	const base = `"model_type":"phi3","vocab_size":10,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":8`
	c, err := ParseConfig([]byte(`{` + base + `}`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Phi3()
	if p == nil || c.Llama() != nil || p.HeadDim != 16 || p.RotaryDim != 16 || p.RMSNormEps != 1e-5 || p.TieWordEmbeddings ||
		p.NumKeyValueHeads != 4 || p.MaxPositionEmbeddings != 4096 || p.OriginalMaxPositionEmbeddings != 4096 ||
		p.LongRoPE != nil || !slices.Equal(p.Windows, []int{0, 0}) {
		t.Fatalf("defaults: %+v", p)
	}
	six := `[1,1,1,1,1,1]`
	for _, c := range []struct {
		config    string
		rot, orig int
		attn      float64 // 0: no LongRoPE
		windows   []int
	}{
		{`"partial_rotary_factor":0.75,"sliding_window":7`, 12, 4096, 0, []int{7, 7}},
		{`"partial_rotary_factor":0.75,"max_position_embeddings":131072,"rope_scaling":{"type":"longrope","short_factor":` + six + `,"long_factor":` + six + `}`,
			12, 4096, math.Sqrt(1 + math.Log(32)/math.Log(4096)), []int{0, 0}},
		{`"partial_rotary_factor":0.75,"max_position_embeddings":2048,"rope_scaling":{"type":"su","short_factor":` + six + `,"long_factor":` + six + `}`,
			12, 4096, 1, []int{0, 0}},
		{`"partial_rotary_factor":0.75,"max_position_embeddings":64,"original_max_position_embeddings":8,"rope_scaling":{"rope_type":"longrope","attention_factor":1.5,"short_factor":` + six + `,"long_factor":` + six + `}`,
			12, 8, 1.5, []int{0, 0}},
		{`"max_position_embeddings":64,"rope_parameters":{"rope_type":"longrope","rope_theta":10000.0,"partial_rotary_factor":0.75,"original_max_position_embeddings":16,"short_factor":` + six + `,"long_factor":` + six + `}`,
			12, 16, math.Sqrt(1 + math.Log(4)/math.Log(16)), []int{0, 0}},
		{`"rope_scaling":null,"sliding_window":null`, 16, 4096, 0, []int{0, 0}},
	} {
		cfg, err := ParseConfig([]byte(`{` + base + `,` + c.config + `}`))
		if err != nil {
			t.Errorf("%s: %v", c.config, err)
			continue
		}
		p := cfg.Phi3()
		if p.RotaryDim != c.rot || p.OriginalMaxPositionEmbeddings != c.orig || !slices.Equal(p.Windows, c.windows) ||
			(p.LongRoPE == nil) != (c.attn == 0) || p.LongRoPE != nil && math.Abs(p.LongRoPE.AttentionFactor-c.attn) > 1e-12 {
			t.Errorf("%s: %+v %+v", c.config, p, p.LongRoPE)
		}
	}
	for _, bad := range []struct{ config, want string }{
		{`"partial_rotary_factor":0`, "partial_rotary_factor"},
		{`"partial_rotary_factor":1.5`, "partial_rotary_factor"},
		{`"partial_rotary_factor":0.7`, "rotary dimensions"}, // 11
		{`"rope_scaling":{"type":"linear","factor":2.0}`, `"linear"`},
		{`"rope_scaling":{"type":"longrope","short_factor":[1,1],"long_factor":[1,1,1,1,1,1,1,1]}`, "short_factor has 2 entries, want 8"},
		{`"rope_scaling":{"type":"longrope","short_factor":[1,1,1,1,1,1,1,1],"long_factor":[1,1,1,1,1,1,1,-1]}`, "long_factor[7]"},
		{`"max_position_embeddings":8192,"rope_scaling":{"type":"longrope","factor":4.0,"short_factor":[1,1,1,1,1,1,1,1],"long_factor":[1,1,1,1,1,1,1,1]}`, "rope_scaling factor 4"},
		{`"original_max_position_embeddings":0`, "original_max_position_embeddings"},
		{`"num_key_value_heads":3`, "num_key_value_heads"},
	} {
		if _, err := ParseConfig([]byte(`{` + base + `,` + bad.config + `}`)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "phi3") ||
			!strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v", bad.config, err)
		}
	}
}

// Phi-3's fused projections are body Linears; its Blocks cut q, k and v
// out of qkv_proj (k after all of q's rows, v after k's) and gate and up
// out of gate_up_proj, and refuse head pruning.
func TestPhi3RolesAndBlocks(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type":"phi3","vocab_size":10,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":8,
		"num_key_value_heads":2,"intermediate_size":8}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"model.layers.0.self_attn.qkv_proj.weight", "model.layers.0.mlp.gate_up_proj.weight"} {
		if r := RoleOf(c, &weights.Tensor{Name: n, DType: weights.BF16, Shape: []int64{16, 64}}); r != RoleLinear {
			t.Errorf("%s: %s", n, r)
		}
	}
	b := c.Params.Blocks()
	if b.HeadDim != 8 || b.NoHeadPruning == "" ||
		!slices.Equal(b.KV, []Slice{{Phi3QKV + ".weight", 0, 4}, {Phi3QKV + ".weight", 0, 5}}) ||
		!slices.Equal(b.Up, []Slice{{Phi3GateUp + ".weight", 0, 0}, {Phi3GateUp + ".weight", 0, 1}}) {
		t.Errorf("blocks %+v", b)
	}
}
