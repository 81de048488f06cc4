package safetensors

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// benchTensors describes a model-like set of about total bytes: per layer a
// few large matrices (F16, BF16, F32) and small vectors. Each tensor's bytes
// are made when the writer asks for them, so generating a large file needs
// one tensor's worth of memory.
func benchTensors(total int64) []*weights.Tensor {
	type spec struct {
		suffix string
		dtype  weights.DType
		shape  []int64
	}
	layer := []spec{
		{"attn.qkv.weight", weights.F16, []int64{1024, 3072}},  // 6 MiB
		{"attn.out.weight", weights.BF16, []int64{1024, 1024}}, // 2 MiB
		{"mlp.up.weight", weights.F32, []int64{1024, 1024}},    // 4 MiB
		{"mlp.down.weight", weights.F16, []int64{2048, 1024}},  // 4 MiB
		{"ln.weight", weights.F32, []int64{1024}},              // 4 KiB
		{"ln.bias", weights.F32, []int64{1024}},                // 4 KiB
		{"attn.qkv.bias", weights.F16, []int64{3072}},          // 6 KiB
		{"position_ids", weights.I64, []int64{1, 512}},         // 4 KiB
	}
	var out []*weights.Tensor
	var size int64
	for l := 0; size < total; l++ {
		for _, s := range layer {
			name := fmt.Sprintf("layers.%d.%s", l, s.suffix)
			n, _ := weights.ByteSize(s.dtype, s.shape)
			seed := uint64(len(out))
			out = append(out, &weights.Tensor{Name: name, DType: s.dtype, Shape: s.shape,
				Data: weights.SourceFunc(func() ([]byte, error) {
					b := make([]byte, n)
					r := rand.New(rand.NewPCG(seed, 0))
					for i := 0; i+8 <= len(b); i += 8 {
						binary.LittleEndian.PutUint64(b[i:], r.Uint64())
					}
					return b, nil
				})})
			size += n
		}
	}
	return out
}

// benchFile returns the file to read: $SAFETENSORS_BENCH_FILE when set (as
// bench/safetensors_read.sh sets it, so that cat and this benchmark read the
// same file), written there first when it does not exist yet; else a file
// written into b.TempDir(). The file holds about 512 MiB of tensors.
func benchFile(b *testing.B) string {
	path := os.Getenv("SAFETENSORS_BENCH_FILE")
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			return path
		}
	} else {
		path = filepath.Join(b.TempDir(), "bench.safetensors")
	}
	if err := WriteFile(path, benchTensors(512<<20), map[string]string{"format": "pt"}); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkReadAll opens a file and touches every tensor byte by copying it
// into a reused buffer, as cat copies a file through its buffer; MB/s is
// over the whole file. Run with a warm page cache, it measures the reader's
// overhead over the kernel's own copy (see bench/safetensors_read.sh).
func BenchmarkReadAll(b *testing.B) {
	path := benchFile(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	b.SetBytes(st.Size())
	b.ResetTimer()
	for b.Loop() {
		g, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range g.Tensors() {
			data, err := t.Bytes()
			if err != nil {
				b.Fatal(err)
			}
			for len(data) > 0 {
				data = data[copy(buf, data):]
			}
		}
		if err := g.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures Open and Close alone against the number of tensors
// and the size of their data: the cost follows the header (the number of
// tensors), not the data, which is not read.
func BenchmarkOpen(b *testing.B) {
	for _, c := range []struct {
		tensors int
		elems   int64 // F32 elements per tensor
	}{
		{10, 16}, {100, 16}, {1000, 16}, {10000, 16}, {100000, 16},
		{100, 256 << 10}, // 100 MiB of data, 100 tensors
		{1000, 64 << 10}, // 250 MiB of data, 1000 tensors
	} {
		name := fmt.Sprintf("tensors=%d/data=%dKiB", c.tensors, int64(c.tensors)*c.elems*4>>10)
		b.Run(name, func(b *testing.B) {
			tensors := make([]*weights.Tensor, c.tensors)
			data := make([]byte, c.elems*4)
			for i := range tensors {
				tensors[i] = &weights.Tensor{Name: fmt.Sprintf("model.layers.%d.weight", i), DType: weights.F32,
					Shape: []int64{c.elems}, Data: weights.Memory(data)}
			}
			path := filepath.Join(b.TempDir(), "open.safetensors")
			if err := WriteFile(path, tensors, nil); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				g, err := Open(path)
				if err != nil {
					b.Fatal(err)
				}
				g.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.tensors), "ns/tensor")
		})
	}
}
