package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// The shapes of the acceptance goal: BERT-base at sequence 128 (QKV/out
// projections 768→768, FFN 768→3072 and 3072→768) and a Llama-1B layer at
// sequence 256 (q/o 2048→2048, k/v 2048→512, gate/up 2048→8192, down
// 8192→2048); m=1 for single-token decoding.
var benchLinearShapes = []struct {
	name       string
	m, out, in int
}{
	{"bert_qkv", 128, 768, 768},
	{"bert_up", 128, 3072, 768},
	{"bert_down", 128, 768, 3072},
	{"llama_q", 256, 2048, 2048},
	{"llama_kv", 256, 512, 2048},
	{"llama_up", 256, 8192, 2048},
	{"llama_down", 256, 2048, 8192},
	{"decode_up", 1, 8192, 2048},
}

func BenchmarkLinear(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchLinearShapes {
		for _, d := range []weights.DType{weights.F32, weights.F16, weights.BF16, weights.I8} {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/m=%d,out=%d,in=%d/%v/threads=%d", s.name, s.m, s.out, s.in, d, threads), func(b *testing.B) {
					w := makeWeight(rng, s.out, s.in, d, false, 0)
					x := randF32(rng, s.m*s.in)
					y := make([]float32, s.m*s.out)
					bias := randF32(rng, s.out)
					b.SetBytes(int64(len(w.Data)))
					b.ResetTimer()
					for b.Loop() {
						Linear(y, x, s.m, w, bias, threads)
					}
					flops := 2 * float64(s.m) * float64(s.out) * float64(s.in) * float64(b.N)
					b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkLinearInt8 compares int8 weights (per channel, and groups of
// 128) with f32 on the layers of TinyLlama (hidden 2048, intermediate 5632:
// q/o 2048→2048, gate/up 2048→5632, down 5632→2048) at the sequence
// lengths of quantize's BenchmarkForwardInt8VsF32: 1 (the dot-product
// path), 16 and 64 (the blocked product).
//
//	go test ./internal/kernels -run '^$' -bench 'LinearInt8'
func BenchmarkLinearInt8(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 3))
	for _, s := range []struct {
		name    string
		out, in int
	}{{"q", 2048, 2048}, {"up", 5632, 2048}, {"down", 2048, 5632}} {
		for _, m := range []int{1, 16, 64} {
			for _, v := range []struct {
				name  string
				d     weights.DType
				group int
			}{{"F32", weights.F32, 0}, {"I8", weights.I8, 0}, {"I8-g128", weights.I8, 128}} {
				w := makeWeight(rng, s.out, s.in, v.d, false, v.group)
				x := randF32(rng, m*s.in)
				y := make([]float32, m*s.out)
				for _, threads := range []int{1, 2} {
					b.Run(fmt.Sprintf("%s/m=%d,out=%d,in=%d/%s/threads=%d", s.name, m, s.out, s.in, v.name, threads), func(b *testing.B) {
						b.SetBytes(int64(len(w.Data)))
						for b.Loop() {
							Linear(y, x, m, w, nil, threads)
						}
						b.ReportMetric(2*float64(m*s.out*s.in)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					})
				}
			}
		}
	}
}

// BenchmarkLinearInMajor covers GPT-2's Conv1D layout ([In][Out]).
func BenchmarkLinearInMajor(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range []weights.DType{weights.F32, weights.F16, weights.I8} {
		b.Run(fmt.Sprintf("gpt2_up/m=128,out=3072,in=768/%v", d), func(b *testing.B) {
			w := makeWeight(rng, 3072, 768, d, true, 0)
			x := randF32(rng, 128*768)
			y := make([]float32, 128*3072)
			for b.Loop() {
				Linear(y, x, 128, w, nil, 1)
			}
			b.ReportMetric(2*128*3072*768*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkMatMul covers one attention head: scores = Q·Kᵀ and context = P·V.
func BenchmarkMatMul(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, s := range []struct {
		name    string
		m, n, k int
		transB  bool
	}{
		{"scores_bert", 128, 128, 64, true},
		{"context_bert", 128, 64, 128, false},
		{"scores_llama", 256, 256, 64, true},
		{"context_llama", 256, 64, 256, false},
	} {
		b.Run(fmt.Sprintf("%s/m=%d,n=%d,k=%d", s.name, s.m, s.n, s.k), func(b *testing.B) {
			a := randF32(rng, s.m*s.k)
			bm := randF32(rng, s.k*s.n)
			c := make([]float32, s.m*s.n)
			for b.Loop() {
				MatMul(c, a, bm, s.m, s.n, s.k, s.transB, 1)
			}
			b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkOps times the element-wise kernels on the rows the layers use.
func BenchmarkOps(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, op := range []struct {
		name string
		n    int
		f    func([]float32)
	}{
		{"GELU", 3072, GELU},
		{"GELUTanh", 3072, GELUTanh},
		{"SiLU", 8192, SiLU},
		{"Softmax", 256, Softmax},
		{"LayerNorm", 768, func(x []float32) { LayerNorm(x, x, nil, nil, 1e-5) }},
		{"RMSNorm", 2048, func(x []float32) { RMSNorm(x, x, nil, 1e-5) }},
		{"RoPE64", 64, func(x []float32) { RoPE(x, 100, 64, 10000) }},
	} {
		b.Run(fmt.Sprintf("%s/n=%d", op.name, op.n), func(b *testing.B) {
			x := randF32(rng, op.n)
			orig := append([]float32(nil), x...)
			b.SetBytes(int64(4 * op.n))
			for b.Loop() {
				copy(x, orig)
				op.f(x)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(op.n), "ns/value")
		})
	}
}

// BenchmarkPackB times packing a whole weight the way gemmPanels does
// (blocks of ncPanels panels of 48 columns by kcBlock rows of B), in ns per
// weight value: "cold" streams a weight from memory (8192×4096: 32 MiB in
// int8), "warm" packs one block of 384×256 over and over (in L2).
func BenchmarkPackB(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 4))
	const nr = 48
	for _, shape := range []struct {
		name    string
		out, in int
	}{{"cold", 8192, 4096}, {"warm", ncPanels * nr, kcBlock}} {
		for _, v := range []struct {
			name  string
			d     weights.DType
			group int
		}{{"F32", weights.F32, 0}, {"BF16", weights.BF16, 0}, {"I8", weights.I8, 0}, {"I8-g128", weights.I8, 128}} {
			b.Run(shape.name+"/"+v.name, func(b *testing.B) {
				out, in := shape.out, shape.in
				w := makeWeight(rng, out, in, v.d, false, v.group)
				src := newBSource(w)
				bp := make([]float32, kcBlock*ncPanels*nr)
				b.SetBytes(int64(len(w.Data)))
				for b.Loop() {
					for jc := 0; jc < out/nr; jc += ncPanels {
						je := min(jc+ncPanels, out/nr)
						for pc := 0; pc < in; pc += kcBlock {
							src.pack(bp, pc, min(kcBlock, in-pc), jc*nr, je*nr, nr)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(out*in), "ns/value")
			})
		}
	}
}
