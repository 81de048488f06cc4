package arch

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

const (
	mpnetBase      = `"model_type":"mpnet","vocab_size":10,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":8,"max_position_embeddings":6`
	modernbertBase = `"model_type":"modernbert","vocab_size":10,"hidden_size":32,"num_hidden_layers":7,"num_attention_heads":4,"intermediate_size":8`
)

// MPNet's config: transformers' defaults, the checks, and the numbers the
// family fixes (positions after the padding index 1).
func TestParseMPNet(t *testing.T) {
	c, err := ParseConfig([]byte(`{"architectures":["MPNetForMaskedLM"],"vocab_size":10}`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.MPNet()
	if c.Family() != "mpnet" || m == nil || m.HiddenSize != 768 || m.NumHiddenLayers != 12 || m.IntermediateSize != 3072 ||
		m.RelativeAttentionNumBuckets != 32 || m.LayerNormEps != 1e-12 || m.HiddenAct != "gelu" || !m.TieWordEmbeddings {
		t.Fatalf("defaults %+v", m)
	}
	c, err = ParseConfig([]byte(`{` + mpnetBase + `,"pad_token_id":0,"num_labels":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Params.Sizes(); s.MaxPositions != 4 || s.HeadDim != 8 || c.MPNet().NumLabels != 3 {
		t.Errorf("sizes %+v labels %d", s, c.MPNet().NumLabels)
	}
	for _, c := range []struct{ extra, field, value string }{
		{`"relative_attention_num_buckets":16`, "relative_attention_num_buckets", "16"},
		{`"relative_attention_num_buckets":0`, "relative_attention_num_buckets", "0"},
		{`"max_position_embeddings":2`, "max_position_embeddings", "2"},
		{`"num_attention_heads":5`, "num_attention_heads", "5"},
		{`"layer_norm_eps":0`, "layer_norm_eps", "0"},
		{`"vocab_size":1`, "vocab_size", "1"},
		{`"intermediate_size":-1`, "intermediate_size", "-1"},
	} {
		_, err := ParseConfig([]byte(`{` + mpnetBase + `,` + c.extra + `}`))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.field) || !strings.Contains(err.Error(), c.value) {
			t.Errorf("%s: %v; want an ErrConfig naming %s and %s", c.extra, err, c.field, c.value)
		}
	}
}

// ModernBERT's config: the layer pattern (global every
// global_attn_every_n_layers from layer 0), the rotary bases of each
// layer from global_rope_theta/local_rope_theta or from rope_parameters
// and layer_types (transformers 5), and the checks.
func TestParseModernBert(t *testing.T) {
	c, err := ParseConfig([]byte(`{` + modernbertBase + `}`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.ModernBert()
	wantLocal := []bool{false, true, true, false, true, true, false}
	wantTheta := []float64{160000, 10000, 10000, 160000, 10000, 10000, 160000}
	if c.Family() != "modernbert" || !slices.Equal(m.Local, wantLocal) || !slices.Equal(m.RopeTheta, wantTheta) ||
		m.LocalAttention != 128 || m.NormEps != 1e-5 || m.NormBias || m.MLPBias || m.AttentionBias || !m.DecoderBias ||
		m.ClassifierBias || m.ClassifierPooling != "cls" || m.HiddenActivation != "gelu" || m.ClassifierActivation != "gelu" || !m.TieWordEmbeddings {
		t.Fatalf("defaults %+v", m)
	}
	c, err = ParseConfig([]byte(`{` + modernbertBase + `,"global_attn_every_n_layers":2,"global_rope_theta":1000,"local_rope_theta":50,
		"norm_bias":true,"mlp_bias":true,"attention_bias":true}`))
	if err != nil {
		t.Fatal(err)
	}
	m = c.ModernBert()
	if !slices.Equal(m.Local, []bool{false, true, false, true, false, true, false}) ||
		!slices.Equal(m.RopeTheta, []float64{1000, 50, 1000, 50, 1000, 50, 1000}) || !m.NormBias || !m.MLPBias || !m.AttentionBias {
		t.Errorf("every 2: %+v", m)
	}
	c, err = ParseConfig([]byte(`{` + modernbertBase + `,"num_hidden_layers":3,
		"layer_types":["full_attention","sliding_attention","full_attention"],
		"rope_parameters":{"full_attention":{"rope_type":"default","rope_theta":2000},"sliding_attention":{"rope_type":"yarn","rope_theta":20}}}`))
	if err != nil {
		t.Fatal(err)
	}
	m = c.ModernBert()
	if !slices.Equal(m.RopeTheta, []float64{2000, 20, 2000}) || !slices.Equal(m.RopeType, []string{"default", "yarn", "default"}) ||
		!slices.Equal(m.Local, []bool{false, true, true}) {
		t.Errorf("rope_parameters: %+v", m)
	}
	for _, c := range []struct{ extra, field, value string }{
		{`"global_attn_every_n_layers":0`, "global_attn_every_n_layers", "0"},
		{`"local_attention":-2`, "local_attention", "-2"},
		{`"global_rope_theta":0`, "global_rope_theta", "0"},
		{`"local_rope_theta":-1`, "local_rope_theta", "-1"},
		{`"norm_eps":0`, "norm_eps", "0"},
		{`"num_attention_heads":5`, "num_attention_heads", "5"},
		{`"hidden_size":36,"num_attention_heads":4`, "head size", "9"},
		{`"layer_types":["full_attention"]`, "layer_types", "1 entries"},
		{`"num_hidden_layers":1,"layer_types":["chunked_attention"]`, "layer_types[0]", "chunked_attention"},
		{`"rope_parameters":{"full_attention":{"rope_theta":-5}}`, "rope_parameters.full_attention.rope_theta", "-5"},
		{`"classifier_pooling":"max"`, "classifier_pooling", "max"},
	} {
		_, err := ParseConfig([]byte(`{` + modernbertBase + `,` + c.extra + `}`))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.field) || !strings.Contains(err.Error(), c.value) {
			t.Errorf("%s: %v; want an ErrConfig naming %s and %s", c.extra, err, c.field, c.value)
		}
	}
}

// The new families' own tensor names get their roles: MPNet's relative
// position bias table is an embedding (not a Linear to quantize or prune),
// ModernBertForMaskedLM's head and decoder are heads.
func TestEncoderRoles(t *testing.T) {
	mp, _ := ParseConfig([]byte(`{` + mpnetBase + `}`))
	mb, _ := ParseConfig([]byte(`{` + modernbertBase + `}`))
	for _, c := range []struct {
		cfg   *Config
		name  string
		shape []int64
		want  Role
	}{
		{mp, "mpnet.encoder.relative_attention_bias.weight", []int64{32, 4}, RoleEmbedding},
		{nil, "encoder.relative_attention_bias.weight", []int64{32, 4}, RoleEmbedding},
		{mp, "mpnet.encoder.layer.0.attention.attn.q.weight", []int64{32, 32}, RoleLinear},
		{mp, "mpnet.encoder.layer.0.attention.LayerNorm.weight", []int64{32}, RoleNorm},
		{mp, "lm_head.dense.weight", []int64{32, 32}, RoleHead},
		{mp, "lm_head.bias", []int64{10}, RoleHead},
		{mp, "classifier.out_proj.weight", []int64{3, 32}, RoleHead},
		{mb, "model.layers.0.attn.Wqkv.weight", []int64{96, 32}, RoleLinear},
		{mb, "model.layers.1.mlp.Wi.weight", []int64{16, 32}, RoleLinear},
		{mb, "model.layers.1.attn_norm.weight", []int64{32}, RoleNorm},
		{mb, "model.embeddings.tok_embeddings.weight", []int64{10, 32}, RoleEmbedding},
		{mb, "head.dense.weight", []int64{32, 32}, RoleHead},
		{mb, "head.norm.weight", []int64{32}, RoleHead},
		{mb, "decoder.weight", []int64{10, 32}, RoleHead},
		{mb, "decoder.bias", []int64{10}, RoleHead},
	} {
		if got := RoleOf(c.cfg, &weights.Tensor{Name: c.name, DType: weights.F32, Shape: c.shape}); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	for _, c := range []*Config{mp, mb} {
		if b := c.Params.Blocks(); b.NoHeadPruning == "" || b.IntermediateField != "intermediate_size" {
			t.Errorf("%s: blocks %+v", c.Family(), b)
		}
	}
	for class, want := range map[string]string{"MPNetForMaskedLM": "mpnet", "MPNetModel": "mpnet", "ModernBertForMaskedLM": "modernbert", "ModernBertModel": "modernbert"} {
		c, err := ParseConfig([]byte(`{"architectures":["` + class + `"],"vocab_size":10,"hidden_size":8,"intermediate_size":8,
			"num_hidden_layers":1,"num_attention_heads":2,"max_position_embeddings":8}`))
		if err != nil || c.Family() != want {
			t.Errorf("%s: family %q, %v; want %q", class, c.Family(), err, want)
		}
	}
}
