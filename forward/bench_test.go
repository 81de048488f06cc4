package forward

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// The benchmarks of the issue: BERT-base (hidden 768, 12 layers, 12 heads,
// intermediate 3072) at sequence 128, and one Llama-3.2-1B-shaped decoder
// layer (hidden 2048, 32 heads, 8 KV heads, intermediate 8192) at sequence
// 256, batch 1, beside a Qwen3-0.6B-shaped and a Gemma-3-1B-shaped layer, with random weights made here, on 1 and 2 threads.
// bench/forward_torch.py times PyTorch on the same shapes;
// bench/forward.sh runs both.
//
//	go test ./forward -run '^$' -bench . -benchtime 5x

// benchGraph builds a graph of random tensors (uniform in ±1/sqrt(fan-in),
// norms near 1) with the given names and shapes, stored as dtype.
func benchGraph(b *testing.B, config string, shapes map[string][]int64, dtype weights.DType) *weights.Graph {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	g := weights.NewGraph()
	g.Config = []byte(config)
	for name, shape := range shapes {
		n, _ := weights.NumElements(shape)
		v := make([]float32, n)
		scale := float32(1 / math.Sqrt(float64(shape[len(shape)-1])))
		for i := range v {
			v[i] = (2*r.Float32() - 1) * scale
			if len(shape) == 1 {
				v[i] = 1 + v[i]/10
			}
		}
		d := dtype
		if len(shape) == 1 {
			d = weights.F32
		}
		t, err := weights.FromFloat32(name, d, shape, v)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Add(t); err != nil {
			b.Fatal(err)
		}
	}
	return g
}

func bertBaseGraph(b *testing.B, dtype weights.DType) *weights.Graph {
	const H, I, L, V, P = 768, 3072, 12, 30522, 512
	s := map[string][]int64{
		"embeddings.word_embeddings.weight":       {V, H},
		"embeddings.position_embeddings.weight":   {P, H},
		"embeddings.token_type_embeddings.weight": {2, H},
		"embeddings.LayerNorm.weight":             {H}, "embeddings.LayerNorm.bias": {H},
		"pooler.dense.weight": {H, H}, "pooler.dense.bias": {H},
	}
	for i := 0; i < L; i++ {
		p := fmt.Sprintf("encoder.layer.%d.", i)
		for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
			s[p+n+".weight"], s[p+n+".bias"] = []int64{H, H}, []int64{H}
		}
		s[p+"intermediate.dense.weight"], s[p+"intermediate.dense.bias"] = []int64{I, H}, []int64{I}
		s[p+"output.dense.weight"], s[p+"output.dense.bias"] = []int64{H, I}, []int64{H}
		for _, n := range []string{"attention.output.LayerNorm", "output.LayerNorm"} {
			s[p+n+".weight"], s[p+n+".bias"] = []int64{H}, []int64{H}
		}
	}
	cfg := fmt.Sprintf(`{"architectures":["BertModel"],"model_type":"bert","hidden_size":%d,"intermediate_size":%d,
		"num_hidden_layers":%d,"num_attention_heads":12,"vocab_size":%d,"max_position_embeddings":%d,"type_vocab_size":2}`, H, I, L, V, P)
	return benchGraph(b, cfg, s, dtype)
}

// llamaLayerGraph is LlamaModel with one decoder layer of Llama 3.2 1B's
// shape (no LM head: the benchmark is the layer).
func llamaLayerGraph(b *testing.B, dtype weights.DType) *weights.Graph {
	const H, I, NH, NKV, V = 2048, 8192, 32, 8, 1024
	const dh = H / NH
	p := "model.layers.0."
	s := map[string][]int64{
		"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H},
		p + "input_layernorm.weight": {H}, p + "post_attention_layernorm.weight": {H},
		p + "self_attn.q_proj.weight": {NH * dh, H}, p + "self_attn.k_proj.weight": {NKV * dh, H},
		p + "self_attn.v_proj.weight": {NKV * dh, H}, p + "self_attn.o_proj.weight": {H, NH * dh},
		p + "mlp.gate_proj.weight": {I, H}, p + "mlp.up_proj.weight": {I, H}, p + "mlp.down_proj.weight": {H, I},
	}
	cfg := fmt.Sprintf(`{"architectures":["LlamaModel"],"model_type":"llama","hidden_size":%d,"intermediate_size":%d,
		"num_hidden_layers":1,"num_attention_heads":%d,"num_key_value_heads":%d,"vocab_size":%d,"rms_norm_eps":1e-5,
		"rope_theta":500000.0,"max_position_embeddings":131072}`, H, I, NH, NKV, V)
	return benchGraph(b, cfg, s, dtype)
}

func benchRun(b *testing.B, g *weights.Graph, seq int) {
	flops := 0.0
	if cfg, err := arch.ParseConfig(g.Config); err == nil && cfg.Family() != "bert" {
		flops = layerFLOPs(cfg, seq)
	}
	ids := make([]int, seq)
	for i := range ids {
		ids[i] = (i * 7919) % 1000
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			m, err := Load(g, nil, Options{Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Run(context.Background(), ids); err != nil { // warm up
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				if _, err := m.Run(context.Background(), ids); err != nil {
					b.Fatal(err)
				}
			}
			cpu = processCPU() - cpu
			if flops > 0 {
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				// Per CPU second: the work, whatever else the machine runs
				// (at 2 threads it leaves out the time a thread waits).
				if cpu > 0 {
					b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "GFLOP/cpu-s")
				}
			}
		})
	}
}

// decoderFLOPs counts the multiply-adds (×2) of the decoder layers of a
// gated-MLP family at sequence n, as computed: the q, k, v and o
// projections, the three MLP matrices, and both products of attention over
// the whole n×n score matrix (causal masking does not skip work). The LM
// head and the per-element work (norms, rotary, softmax) are left out.
func decoderFLOPs(s arch.Sizes, n int) float64 {
	N, H, I := float64(n), float64(s.HiddenSize), float64(s.Intermediate)
	q, kv := float64(s.Heads*s.HeadDim), float64(s.KVHeads*s.HeadDim)
	proj := 2 * N * H * (2*q + 2*kv)
	mlp := 2 * N * H * I * 3
	att := 2 * 2 * N * N * float64(s.HeadDim) * float64(s.Heads)
	return float64(s.Layers) * (proj + mlp + att)
}

// BenchmarkBertBase runs BERT-base at sequence 128 with f32 weights.
func BenchmarkBertBase(b *testing.B) { benchRun(b, bertBaseGraph(b, weights.F32), 128) }

// BenchmarkLlamaLayer runs one Llama-1B-shaped layer at sequence 256 with
// f32 weights.
func BenchmarkLlamaLayer(b *testing.B) { benchRun(b, llamaLayerGraph(b, weights.F32), 256) }

// BenchmarkLlamaLayerBF16 is BenchmarkLlamaLayer with bf16 weights used in
// place, as a bf16 checkpoint runs.
func BenchmarkLlamaLayerBF16(b *testing.B) { benchRun(b, llamaLayerGraph(b, weights.BF16), 256) }

// decoderLayerGraph is the base model of a family with one decoder layer
// and a small vocabulary: the Llama layer's tensors, plus norms of a
// family's own (relative to the layer).
func decoderLayerGraph(b *testing.B, config string, H, I, NH, NKV, dh int64, norms map[string]int64, dtype weights.DType) *weights.Graph {
	p := "model.layers.0."
	s := map[string][]int64{
		"model.embed_tokens.weight": {1024, H}, "model.norm.weight": {H},
		p + "input_layernorm.weight": {H}, p + "post_attention_layernorm.weight": {H},
		p + "self_attn.q_proj.weight": {NH * dh, H}, p + "self_attn.k_proj.weight": {NKV * dh, H},
		p + "self_attn.v_proj.weight": {NKV * dh, H}, p + "self_attn.o_proj.weight": {H, NH * dh},
		p + "mlp.gate_proj.weight": {I, H}, p + "mlp.up_proj.weight": {I, H}, p + "mlp.down_proj.weight": {H, I},
	}
	for n, d := range norms {
		s[p+n+".weight"] = []int64{d}
	}
	return benchGraph(b, config, s, dtype)
}

// BenchmarkQwen3Layer runs one Qwen3-0.6B-shaped layer (hidden 1024, 16
// heads of 128, 8 KV heads, intermediate 3072, q/k norms) at sequence 256.
func BenchmarkQwen3Layer(b *testing.B) {
	cfg := `{"architectures":["Qwen3Model"],"model_type":"qwen3","hidden_size":1024,"intermediate_size":3072,
		"num_hidden_layers":1,"num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,"vocab_size":1024,
		"rope_theta":1000000.0,"max_position_embeddings":40960}`
	benchRun(b, decoderLayerGraph(b, cfg, 1024, 3072, 16, 8, 128,
		map[string]int64{"self_attn.q_norm": 128, "self_attn.k_norm": 128}, weights.F32), 256)
}

// BenchmarkGemma3Layer runs one Gemma-3-1B-shaped layer (hidden 1152, 4
// heads of 256, 1 KV head, intermediate 6912, sandwich and q/k norms,
// gelu-tanh) at sequence 256; its window (512) does not bind.
func BenchmarkGemma3Layer(b *testing.B) {
	cfg := `{"architectures":["Gemma3TextModel"],"model_type":"gemma3_text","hidden_size":1152,"intermediate_size":6912,
		"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":1,"head_dim":256,"vocab_size":1024,
		"query_pre_attn_scalar":256,"sliding_window":512,"rope_theta":1000000.0,"rope_local_base_freq":10000.0}`
	benchRun(b, decoderLayerGraph(b, cfg, 1152, 6912, 4, 1, 256, map[string]int64{"self_attn.q_norm": 256,
		"self_attn.k_norm": 256, "pre_feedforward_layernorm": 1152, "post_feedforward_layernorm": 1152}, weights.F32), 256)
}

// BenchmarkPhi3Layer runs one Phi-4-mini-shaped layer (hidden 3072, 24
// heads of 128, 8 KV heads, intermediate 8192, fused qkv_proj and
// gate_up_proj, partial_rotary_factor 0.75, LongRoPE) at sequence 256.
func BenchmarkPhi3Layer(b *testing.B) {
	const H, I, NH, NKV, dh = 3072, 8192, 24, 8, 128
	factors := strings.TrimSuffix(strings.Repeat("1.5,", dh*3/4/2), ",")
	cfg := fmt.Sprintf(`{"architectures":["Phi3Model"],"model_type":"phi3","hidden_size":%d,"intermediate_size":%d,
		"num_hidden_layers":1,"num_attention_heads":%d,"num_key_value_heads":%d,"vocab_size":1024,"rms_norm_eps":1e-5,
		"rope_theta":10000.0,"partial_rotary_factor":0.75,"max_position_embeddings":131072,"original_max_position_embeddings":4096,
		"sliding_window":262144,"rope_scaling":{"type":"longrope","short_factor":[%s],"long_factor":[%s]}}`, H, I, NH, NKV, factors, factors)
	p := "model.layers.0."
	s := map[string][]int64{
		"model.embed_tokens.weight": {1024, H}, "model.norm.weight": {H},
		p + "input_layernorm.weight": {H}, p + "post_attention_layernorm.weight": {H},
		p + "self_attn.qkv_proj.weight": {(NH + 2*NKV) * dh, H}, p + "self_attn.o_proj.weight": {H, NH * dh},
		p + "mlp.gate_up_proj.weight": {2 * I, H}, p + "mlp.down_proj.weight": {H, I},
	}
	benchRun(b, benchGraph(b, cfg, s, weights.F32), 256)
}
