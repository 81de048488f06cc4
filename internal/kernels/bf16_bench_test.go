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

// BenchmarkHeadRowPaths compares, at m = 1 on one thread, the fused rows
// (rowsHalf, what gemv runs) with the path gemv took before them (each row
// widened into a buffer, then dot), alternating five times, on BF16 and F16
// weights of 2048 inputs: the TinyLlama head (32000 outputs, 131 MB,
// streamed from memory) and 256 outputs (1 MB, from cache); CPU time per op
// is reported beside the wall time.
//
//	go test ./internal/kernels -run '^$' -bench HeadRowPaths -benchtime 20x
func BenchmarkHeadRowPaths(b *testing.B) {
	for _, out := range []int{32000, 256} {
		headRowPaths(b, out)
	}
}

func headRowPaths(b *testing.B, out int) {
	const in = 2048
	rng := rand.New(rand.NewPCG(5, 7))
	x := randF32(rng, in)
	y := make([]float32, out)
	buf := make([]float32, in)
	for _, d := range []weights.DType{weights.BF16, weights.F16} {
		w := makeWeight(rng, out, in, d, false, 0)
		widen := widenBF16
		if d == weights.F16 {
			widen = widenF16
		}
		paths := []struct {
			name string
			run  func()
		}{
			{"widen-then-dot", func() {
				for o := 0; o < out; o++ {
					widen(buf, w.Data[2*o*in:2*(o+1)*in])
					y[o] = dot(x, buf)
				}
			}},
			{"fused", func() { rowsHalf(y, x, 1, w, 0, out, nil) }},
		}
		for round := 0; round < 5; round++ {
			for _, p := range paths {
				b.Run(fmt.Sprintf("out=%d/%v/%s", out, d, p.name), func(b *testing.B) {
					b.SetBytes(int64(len(w.Data)))
					c0 := processCPU()
					for b.Loop() {
						p.run()
					}
					if c := processCPU() - c0; c > 0 {
						b.ReportMetric(float64(c.Nanoseconds())/1e6/float64(b.N), "cpu-ms/op")
					}
				})
			}
		}
	}
}
