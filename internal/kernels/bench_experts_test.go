package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// BenchmarkLinearExperts runs Linear the way an MoE layer runs its experts:
// one product per expert, each with the few rows routed to it, over 16
// expert weights of Qwen3-30B-A3B's gate/up shape (768×2048, 96 MiB in
// F32, more than the caches hold, so each weight comes from memory as in
// a real layer). m is the rows per expert: 16 as in the Qwen3-MoE layer
// benchmark (256 tokens, top-8 of 128), 64 as in the Mixtral one (top-2 of
// 8), 256 as a dense layer's. Per FLOP, the few-row products pay for
// reading (and packing) each weight with fewer multiply-adds: compare with
// BenchmarkPackB's cold and warm figures.
func BenchmarkLinearExperts(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 7))
	const experts, out, in = 16, 768, 2048
	ws := make([]*Weight, experts)
	for e := range ws {
		ws[e] = makeWeight(rng, out, in, weights.F32, false, 0)
	}
	for _, m := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("m=%d", m), func(b *testing.B) {
			x := randF32(rng, m*in)
			y := make([]float32, m*out)
			for b.Loop() {
				for _, w := range ws {
					Linear(y, x, m, w, nil, 1)
				}
			}
			flops := 2 * float64(m) * out * in * experts * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
