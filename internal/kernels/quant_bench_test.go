package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// quantBenchBytes is the largest input of BenchmarkInt8Kernels, far beyond
// the caches, so that it measures memory bandwidth.
const quantBenchBytes = 256 << 20

// BenchmarkInt8Kernels measures the kernels on one goroutine across sizes:
// in L1 (16 KiB of input), in L2 (1 MiB) and in memory (256 MiB), in GB/s of
// float32 input.
func BenchmarkInt8Kernels(b *testing.B) {
	x := make([]float32, quantBenchBytes/4)
	r := rand.New(rand.NewPCG(2, 2))
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	dst := make([]byte, len(x))
	for _, size := range []int{16 << 10, 1 << 20, quantBenchBytes} {
		n := size / 4
		b.Run(fmt.Sprintf("absmax/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				AbsMaxBits(x[:n])
			}
		})
		b.Run(fmt.Sprintf("quantizeRun/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				QuantizeRun(dst[:n], x[:n], 0.02)
			}
		})
		b.Run(fmt.Sprintf("quantizeGroups128/%dKiB", size>>10), func(b *testing.B) {
			s := make([]float32, n/128)
			for i := range s {
				s[i] = 0.02
			}
			b.SetBytes(int64(size))
			for b.Loop() {
				QuantizeGroups(dst[:n], x[:n], s, 128)
			}
		})
		b.Run(fmt.Sprintf("quantizeRunGo/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				quantizeRunGo(dst[:n], x[:n], 0.02)
			}
		})
	}
}
