package formats

import (
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

func TestSummarize(t *testing.T) {
	g := weights.NewGraph()
	add := func(name string, d weights.DType, shape []int64, storage string) {
		n, _ := weights.ByteSize(d, shape)
		tt, err := weights.NewTensor(name, d, shape, make([]byte, n))
		if err != nil {
			t.Fatal(err)
		}
		tt.Storage = storage
		if err := g.Add(tt); err != nil {
			t.Fatal(err)
		}
	}
	add("transformer.wte.weight", weights.F32, []int64{10, 4}, "s/0")
	add("transformer.h.0.attn.bias", weights.F32, []int64{1, 1, 4, 4}, "s/1")
	add("transformer.h.0.mlp.c_fc.weight", weights.F16, []int64{4, 16}, "s/2")
	add("lm_head.weight", weights.F32, []int64{10, 4}, "s/0")
	add("embeddings.position_ids", weights.I64, []int64{1, 4}, "s/3")
	cfg, err := arch.ParseConfig([]byte(`{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","vocab_size":10,"n_embd":4,"n_layer":1,"n_head":1,"n_positions":4}`))
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(g, cfg)
	if s.Parameters != 40+64 {
		t.Errorf("parameters %d, want 104 (wte once, no buffers)", s.Parameters)
	}
	if s.Elements != 40+16+64+40+4 {
		t.Errorf("elements %d", s.Elements)
	}
	if s.Bytes != 160+64+128+32 {
		t.Errorf("bytes %d", s.Bytes)
	}
	if len(s.Tied) != 1 || len(s.Tied[0]) != 2 || s.Tied[0][1] != "lm_head.weight" {
		t.Errorf("tied %v", s.Tied)
	}
	if s.ConfigTied != nil || s.Family != "gpt2" || len(s.Tensors) != 5 {
		t.Errorf("summary %+v", s)
	}
	g.Remove("lm_head.weight")
	if s := Summarize(g, cfg); len(s.ConfigTied) != 1 || s.ConfigTied[0] != "lm_head.weight=transformer.wte.weight" {
		t.Errorf("config tied %v", s.ConfigTied)
	}
}

// TestSummarizeInt8: an int8 weight of the compressed-tensors layout counts
// as the weight it replaces; its scale and zero point do not count, and an
// int8 tensor without a scale is not a weight.
func TestSummarizeInt8(t *testing.T) {
	g := weights.NewGraph()
	add := func(name string, d weights.DType, shape ...int64) {
		n, _ := weights.ByteSize(d, shape)
		tt, err := weights.NewTensor(name, d, shape, make([]byte, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(tt); err != nil {
			t.Fatal(err)
		}
	}
	add("model.layers.0.mlp.up_proj.weight", weights.I8, 8, 4)
	add("model.layers.0.mlp.up_proj.weight_scale", weights.F16, 8, 1)
	add("model.layers.0.mlp.down_proj.weight", weights.I8, 4, 8)
	add("model.layers.0.mlp.down_proj.weight_scale", weights.F32, 4, 2)
	add("model.layers.0.mlp.down_proj.weight_zero_point", weights.F32, 4, 2)
	add("model.norm.weight", weights.F32, 4)
	add("counts", weights.I8, 3)
	add("other.weight_scale", weights.F32, 5) // no int8 weight beside it: a parameter
	if s := Summarize(g, nil); s.Parameters != 32+32+4+5 {
		t.Errorf("parameters %d, want %d", s.Parameters, 32+32+4+5)
	}
}
