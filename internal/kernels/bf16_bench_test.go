package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// BenchmarkHeadGemv times a TinyLlama head (32000×2048) at m = 1, the
// single-row product of every decoding step, for each float dtype and int8
// per channel, on one thread and on two; SetBytes is the weight's size, so
// MB/s is the rate at which the weight is read.
//
//	go test ./internal/kernels -run '^$' -bench HeadGemv -benchtime 20x
func BenchmarkHeadGemv(b *testing.B) {
	const out, in = 32000, 2048
	rng := rand.New(rand.NewPCG(5, 6))
	x := randF32(rng, in)
	y := make([]float32, out)
	for _, d := range []weights.DType{weights.BF16, weights.F16, weights.F32, weights.I8} {
		w := makeWeight(rng, out, in, d, false, 0)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%v/threads=%d", d, threads), func(b *testing.B) {
				b.SetBytes(int64(len(w.Data)))
				for b.Loop() {
					Linear(y, x, 1, w, nil, threads)
				}
			})
		}
	}
}
