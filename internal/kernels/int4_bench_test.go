package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkLinearInt4 runs int4 weights (groups of 128, symmetric) on the
// layers of TinyLlama (q/o 2048→2048, gate/up 2048→5632, down 5632→2048) at
// the sequence lengths of BenchmarkLinearInt8, for comparison with it.
//
//	go test ./internal/kernels -run '^$' -bench 'LinearInt(4|8)'
func BenchmarkLinearInt4(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 3))
	for _, s := range []struct {
		name    string
		out, in int
	}{{"q", 2048, 2048}, {"up", 5632, 2048}, {"down", 2048, 5632}} {
		for _, m := range []int{1, 16, 64} {
			w := makeInt4(rng, s.out, s.in, 128, false)
			x := randF32(rng, m*s.in)
			y := make([]float32, m*s.out)
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/m=%d,out=%d,in=%d/I4-g128/threads=%d", s.name, m, s.out, s.in, threads), func(b *testing.B) {
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
