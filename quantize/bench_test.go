package quantize

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// benchBytes is the size of the buffers of the throughput benchmarks, far
// beyond the caches, so that they measure memory bandwidth.
const benchBytes = 256 << 20

// BenchmarkMemoryCopy measures the machine's memory copy bandwidth, the
// yardstick of BenchmarkQuantizeInt8: copy() of a 256 MiB buffer into
// another, by one goroutine and by GOMAXPROCS goroutines each copying a
// part. Bytes are those of the source (each is also written once).
func BenchmarkMemoryCopy(b *testing.B) {
	src := make([]byte, benchBytes)
	dst := make([]byte, benchBytes)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src) // fault every page in
	for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			b.SetBytes(benchBytes)
			for b.Loop() {
				var wg sync.WaitGroup
				for w := range threads {
					lo, hi := benchBytes*w/threads, benchBytes*(w+1)/threads
					wg.Add(1)
					go func() {
						defer wg.Done()
						copy(dst[lo:hi], src[lo:hi])
					}()
				}
				wg.Wait()
			}
		})
	}
}

// BenchmarkQuantizeInt8 measures the int8 pass on one 16384×4096 Linear
// weight (256 MiB as F32), in GB/s of input (the source's bytes). "writer"
// asks for the scales, then the int8 data, as the safetensors writer does
// (two passes over the weight); "int8-first" asks for the int8 data first
// (one pass that computes the scales on the way).
func BenchmarkQuantizeInt8(b *testing.B) {
	const out, in = 16384, 4096
	cfg := mustConfig(b, llamaConfig)
	r := rand.New(rand.NewPCG(1, 1))
	v := make([]float32, out*in)
	for i := range v {
		v[i] = float32(r.NormFloat64()) * 0.02
	}
	for _, d := range []weights.DType{weights.F32, weights.BF16} {
		w, err := weights.FromFloat32("model.layers.0.mlp.up_proj.weight", d, []int64{out, in}, v)
		if err != nil {
			b.Fatal(err)
		}
		g := weights.NewGraph()
		g.Add(w)
		for _, group := range []int{0, 128} {
			for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
				for _, order := range []string{"writer", "int8-first"} {
					name := fmt.Sprintf("%v/group=%d/threads=%d/%s", d, group, threads, order)
					run := func(b *testing.B) {
						qg, _, err := Quantize(g, cfg, Options{Scheme: Int8, GroupSize: group, Threads: threads})
						if err != nil {
							b.Fatal(err)
						}
						q, _ := qg.Tensor(w.Name)
						s, _ := qg.Tensor("model.layers.0.mlp.up_proj.weight_scale")
						first, second := s, q
						if order == "int8-first" {
							first, second = q, s
						}
						if _, err := first.Bytes(); err != nil {
							b.Fatal(err)
						}
						if _, err := second.Bytes(); err != nil {
							b.Fatal(err)
						}
					}
					b.Run(name, func(b *testing.B) {
						// Untimed runs first, so that the heap holds the
						// memory of the outputs: the first touch of memory
						// new to the process is not what is measured (it
						// costs ~30µs per 4 KiB page on the development VM;
						// see internal/mmap's BenchmarkTouch).
						for range 3 {
							run(b)
						}
						b.SetBytes(w.NumBytes())
						for b.Loop() {
							run(b)
						}
					})
				}
			}
		}
	}
}
