package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/formats/gguf"
)

// ggmlTestScales are f16 block scales the kernels must widen exactly:
// ordinary ones, zero, the smallest and largest subnormals, the largest
// finite half and negatives.
var ggmlTestScales = []uint16{0x3c00, 0x2e66, 0x1400, 0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0xb2a1, 0x0c00}

// ggmlTestBlocks returns n random blocks of k: random code bytes (so every
// nibble and every 6-bit code turns up), f16 scales drawn from
// ggmlTestScales or at random (finite), the first block all-ones bits and
// the second all-zero bits in its codes.
func ggmlTestBlocks(rng *rand.Rand, k *ggmlSIMD, n int) []byte {
	b := make([]byte, n*k.blockBytes)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	half := func() uint16 {
		if rng.IntN(2) == 0 {
			return ggmlTestScales[rng.IntN(len(ggmlTestScales))]
		}
		for {
			h := uint16(rng.Uint32())
			if h&0x7c00 != 0x7c00 {
				return h
			}
		}
	}
	for j := 0; j < n; j++ {
		blk := b[j*k.blockBytes : (j+1)*k.blockBytes]
		switch {
		case j == 0:
			for i := range blk {
				blk[i] = 0xff
			}
		case j == 1:
			clear(blk)
		}
		switch k.name {
		case "Q6_K":
			binary.LittleEndian.PutUint16(blk[208:], half())
		case "Q4_K", "Q5_K":
			binary.LittleEndian.PutUint16(blk[0:], half())
			binary.LittleEndian.PutUint16(blk[2:], half())
		default:
			binary.LittleEndian.PutUint16(blk[0:], half())
		}
	}
	return b
}

// TestGGMLSIMDDecodeExact checks each assembly decoder against
// formats/gguf's Decode bit for bit, from one block to many.
func TestGGMLSIMDDecodeExact(t *testing.T) {
	if len(ggmlSIMDKernels) == 0 {
		t.Skip("no ggml assembly kernels in this build")
	}
	rng := rand.New(rand.NewPCG(16, 1))
	for _, k := range ggmlSIMDKernels {
		for _, n := range []int{1, 2, 3, 8, 23} {
			src := ggmlTestBlocks(rng, k, n)
			want := make([]float32, n*k.blockLen)
			if err := gguf.Decode(gguf.Type(k.ggmlType), want, src); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, n*k.blockLen+1)
			got[len(got)-1] = 42
			k.decodeRow(got[:n*k.blockLen], src)
			for i, w := range want {
				if math.Float32bits(got[i]) != math.Float32bits(w) {
					t.Fatalf("%s, %d blocks: value %d = %g (%#x), Decode gives %g (%#x)", k.name, n, i, got[i], math.Float32bits(got[i]), w, math.Float32bits(w))
				}
			}
			if got[len(got)-1] != 42 {
				t.Fatalf("%s, %d blocks: wrote past the row", k.name, n)
			}
		}
	}
}

// TestGGMLSIMDDot checks each assembly dot product against Σ x·w in
// float64 over formats/gguf's decoded weights: the same products summed
// in another order, so within f32 rounding of Σ|x·w|.
func TestGGMLSIMDDot(t *testing.T) {
	if len(ggmlSIMDKernels) == 0 {
		t.Skip("no ggml assembly kernels in this build")
	}
	rng := rand.New(rand.NewPCG(16, 2))
	for _, k := range ggmlSIMDKernels {
		for _, n := range []int{1, 2, 3, 8, 23} {
			src := ggmlTestBlocks(rng, k, n)
			w := make([]float32, n*k.blockLen)
			if err := gguf.Decode(gguf.Type(k.ggmlType), w, src); err != nil {
				t.Fatal(err)
			}
			x := randF32(rng, len(w))
			var ref, mag float64
			for i := range w {
				p := float64(x[i]) * float64(w[i])
				ref += p
				mag += math.Abs(p)
			}
			got := k.dotRow(x, src)
			if d := math.Abs(float64(got) - ref); d > 2e-6*mag || math.IsNaN(float64(got)) {
				t.Fatalf("%s, %d blocks: dot %g, want %g (Σ|x·w| %g)", k.name, n, got, ref, mag)
			}
		}
	}
}

// BenchmarkGGMLSIMD times each assembly decoder and dot product on 32768
// values (a 16×2048 weight, in cache) against formats/gguf's plain
// Decode; the throughput is of the blocks' bytes.
func BenchmarkGGMLSIMD(b *testing.B) {
	rng := rand.New(rand.NewPCG(16, 3))
	const n = 32768
	for _, k := range ggmlSIMDKernels {
		src := ggmlTestBlocks(rng, k, n/k.blockLen)
		dst := make([]float32, n)
		x := randF32(rng, n)
		b.Run("decode/"+k.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				k.decodeRow(dst, src)
			}
		})
		b.Run("gguf.Decode/"+k.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if err := gguf.Decode(gguf.Type(k.ggmlType), dst, src); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("dot/"+k.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			var s float32
			for b.Loop() {
				s += k.dotRow(x, src)
			}
			_ = s
		})
	}
}

// TestGGMLSIMDTables checks that ggmlDecodeRow and ggmlDotRow run the
// assembly for its types, and the plain loops while AVX-512 is off, both
// giving formats/gguf's values (the dot within rounding).
func TestGGMLSIMDTables(t *testing.T) {
	if len(ggmlSIMDKernels) == 0 {
		t.Skip("no ggml assembly kernels in this build")
	}
	rng := rand.New(rand.NewPCG(16, 4))
	for _, on := range []bool{true, false} {
		was := setAVX512(on)
		for _, k := range ggmlSIMDKernels {
			typ := GGMLType(k.ggmlType)
			src := ggmlTestBlocks(rng, k, 9)
			want := make([]float32, 9*k.blockLen)
			if err := gguf.Decode(gguf.Type(k.ggmlType), want, src); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(want))
			ggmlDecodeRow[typ](got, src)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("AVX-512 %v, %s: value %d = %g, want %g", on, k.name, i, got[i], want[i])
				}
			}
			x := randF32(rng, len(want))
			var ref, mag float64
			for i := range want {
				ref += float64(x[i]) * float64(want[i])
				mag += math.Abs(float64(x[i]) * float64(want[i]))
			}
			d := ggmlDotRow[typ](x, src)
			if math.Abs(float64(d)-ref) > 2e-6*mag {
				t.Errorf("AVX-512 %v, %s: dot %g, want %g", on, k.name, d, ref)
			}
			if asm := k.dotRow(x, src); on && d != asm {
				t.Errorf("%s: table's dot %g, the assembly's %g", k.name, d, asm)
			}
		}
		setAVX512(was)
	}
}
