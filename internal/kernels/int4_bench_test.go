package kernels

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
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

// int4Rounds is the number of interleaved rounds of BenchmarkDecodeStackInt4.
var int4Rounds = flag.Int("int4.rounds", 1, "rounds of BenchmarkDecodeStackInt4 (int8 and int4 alternate)")

// BenchmarkDecodeStackInt4 times the projections of a single-token forward
// through 4 TinyLlama-width layers (q 2048→2048, k and v 2048→256, o
// 2048→2048, gate and up 2048→5632, down 5632→2048; 28 distinct weights,
// 176 MB as int8, so they stream from memory as in the forward pass) with
// int8 weights (per channel) and int4 (groups of 128): the matrix-vector
// work of decoding without the head, attention and norms. The two alternate
// for -int4.rounds rounds; the load average is reported with each figure,
// and the CPU time per op.
//
//	go test ./internal/kernels -run '^$' -bench DecodeStackInt4 -benchtime 10x -int4.rounds 5
func BenchmarkDecodeStackInt4(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	shapes := [][2]int{{2048, 2048}, {256, 2048}, {256, 2048}, {2048, 2048}, {5632, 2048}, {5632, 2048}, {2048, 5632}}
	var i8, i4 []*Weight
	for l := 0; l < 4; l++ {
		for _, s := range shapes {
			i8 = append(i8, makeWeight(rng, s[0], s[1], weights.I8, false, 0))
			i4 = append(i4, makeInt4(rng, s[0], s[1], 128, false))
		}
	}
	x := randF32(rng, 5632)
	y := make([]float32, 5632)
	for r := 0; r < *int4Rounds; r++ {
		for _, threads := range []int{1, 2} {
			for _, v := range []struct {
				name string
				ws   []*Weight
			}{{"I8", i8}, {"I4-g128", i4}} {
				b.Run(fmt.Sprintf("threads=%d/%s", threads, v.name), func(b *testing.B) {
					load := loadAverage()
					c0 := processCPU()
					for b.Loop() {
						for _, w := range v.ws {
							Linear(y, x, 1, w, nil, threads)
						}
					}
					if c := processCPU() - c0; c > 0 {
						b.ReportMetric(float64(c.Nanoseconds())/1e6/float64(b.N), "cpu-ms/op")
					}
					if load >= 0 {
						b.ReportMetric(max(load, loadAverage()), "load")
					}
				})
			}
		}
	}
}

// loadAverage returns the 1-minute load average, -1 where /proc/loadavg
// cannot be read.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// BenchmarkLinearInt4Blocks runs the int4 weights the kernel of 32-input
// blocks takes (dotsI4AVX512: groups of 32 or 64, or In not a multiple of
// 128) at m = 1 and 4, one thread; the CPU time per op is reported too.
//
//	go test ./internal/kernels -run '^$' -bench 'LinearInt4Blocks' -benchtime 200x
func BenchmarkLinearInt4Blocks(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 4))
	for _, s := range []struct{ out, in, group int }{{2048, 2048, 32}, {2048, 2048, 64}, {2048, 2080, 32}} {
		for _, m := range []int{1, 4} {
			w := makeInt4(rng, s.out, s.in, s.group, false)
			x := randF32(rng, m*s.in)
			y := make([]float32, m*s.out)
			b.Run(fmt.Sprintf("m=%d,out=%d,in=%d/I4-g%d", m, s.out, s.in, s.group), func(b *testing.B) {
				b.SetBytes(int64(len(w.Data)))
				c0 := processCPU()
				for b.Loop() {
					Linear(y, x, m, w, nil, 1)
				}
				if c := processCPU() - c0; c > 0 {
					b.ReportMetric(float64(c.Nanoseconds())/1e3/float64(b.N), "cpu-us/op")
				}
			})
		}
	}
}
