package quantize

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

// BenchmarkForwardInt8VsF32 compares the native forward pass of a
// Llama-shaped model (TinyLlama's layer: hidden 2048, intermediate 5632, 32
// heads, 4 KV heads; 2 layers; a 1024-token vocabulary so that the layers,
// not the f32 embedding and head, dominate) with the same model after the
// int8 pass (per channel, and groups of 128), the w4a16 pass (groups of
// 128: the int4 kernels of internal/kernels/int4_amd64.s) and the fp8 pass (widened
// to f32 at load), at sequence lengths 1 (the
// matrix-vector path of decoding), 16 and 64, batch 1, GOMAXPROCS threads.
// The int8 model is built with Quantize and read from the graph it returns,
// as `hubmirror quantize` writes it. Weights are in memory (not mapped), so
// this is the steady state of a loaded model.
//
//	go test ./quantize -run '^$' -bench ForwardInt8VsF32 -benchtime 10x
func BenchmarkForwardInt8VsF32(b *testing.B) {
	const H, I, L, V, nh, nkv = 2048, 5632, 2, 1024, 32, 4
	dh := H / nh
	shapes := map[string][]int64{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}, "lm_head.weight": {V, H}}
	for i := 0; i < L; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		shapes[p+"input_layernorm.weight"], shapes[p+"post_attention_layernorm.weight"] = []int64{H}, []int64{H}
		shapes[p+"self_attn.q_proj.weight"], shapes[p+"self_attn.o_proj.weight"] = []int64{nh * int64(dh), H}, []int64{H, nh * int64(dh)}
		shapes[p+"self_attn.k_proj.weight"], shapes[p+"self_attn.v_proj.weight"] = []int64{nkv * int64(dh), H}, []int64{nkv * int64(dh), H}
		shapes[p+"mlp.gate_proj.weight"], shapes[p+"mlp.up_proj.weight"] = []int64{I, H}, []int64{I, H}
		shapes[p+"mlp.down_proj.weight"] = []int64{H, I}
	}
	config := fmt.Sprintf(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":%d,"intermediate_size":%d,
		"num_hidden_layers":%d,"num_attention_heads":%d,"num_key_value_heads":%d,"vocab_size":%d,"rms_norm_eps":1e-5,
		"max_position_embeddings":2048,"tie_word_embeddings":false}`, H, I, L, nh, nkv, V)
	cfg, err := arch.ParseConfig([]byte(config))
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	g := weights.NewGraph()
	g.Config = []byte(config)
	for name, shape := range shapes {
		n, _ := weights.NumElements(shape)
		v := make([]float32, n)
		sd := 1 / math.Sqrt(float64(shape[len(shape)-1]))
		for i := range v {
			v[i] = float32(r.NormFloat64() * sd)
			if len(shape) == 1 {
				v[i] = 1 + v[i]/10
			}
		}
		t, err := weights.FromFloat32(name, weights.F32, shape, v)
		if err != nil {
			b.Fatal(err)
		}
		g.Add(t)
	}
	models := []struct {
		name   string
		group  int
		scheme Scheme
	}{{"f32", -1, ""}, {"int8", 0, Int8}, {"int8-g128", 128, Int8}, {"w4a16-g128", 128, W4A16}, {"fp8", 0, FP8}}
	for _, m := range models {
		mg := g
		if m.group >= 0 {
			qg, _, err := Quantize(g, cfg, Options{Scheme: m.scheme, GroupSize: m.group})
			if err != nil {
				b.Fatal(err)
			}
			// Materialize the lazy tensors once, as reading the written
			// files back would.
			mg = qg.Derive()
			for _, t := range qg.Tensors() {
				data, err := t.Bytes()
				if err != nil {
					b.Fatal(err)
				}
				x, _ := weights.NewTensor(t.Name, t.DType, t.Shape, data)
				mg.Add(x)
			}
		}
		model, err := forward.Load(mg, nil, forward.Options{Threads: runtime.GOMAXPROCS(0)})
		if err != nil {
			b.Fatal(err)
		}
		if m.group >= 0 && !model.Info().Quantized {
			b.Fatalf("%s: the model did not load as quantized", m.name)
		}
		for _, seq := range []int{1, 16, 64} {
			ids := make([]int, seq)
			for i := range ids {
				ids[i] = (i * 37) % V
			}
			b.Run(fmt.Sprintf("seq=%d/%s", seq, m.name), func(b *testing.B) {
				if _, err := model.Run(context.Background(), ids); err != nil { // warm up
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := model.Run(context.Background(), ids); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
