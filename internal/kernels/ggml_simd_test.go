package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/weights"
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

// BenchmarkGGMLSIMDLinear times Linear on one thread with a 2048×5632
// weight (TinyLlama's MLP) in Q4_K and Q6_K blocks and as F32, for the
// prefill of 128 tokens (the packed product, which decodes the blocks
// panel by panel) and for one token (ggmlDotRow).
func BenchmarkGGMLSIMDLinear(b *testing.B) {
	const out, in = 2048, 5632
	rng := rand.New(rand.NewPCG(16, 5))
	vals := make([]float32, out*in)
	for i := range vals {
		vals[i] = float32(rng.NormFloat64() * 0.02)
	}
	ws := map[string]*Weight{"F32": {Out: out, In: in, DType: weights.F32, Data: f32Bytes(vals)}}
	for _, typ := range []GGMLType{GGMLQ4_K, GGMLQ6_K} {
		elems, bytes, _ := typ.Block()
		data := make([]byte, len(vals)/elems*bytes)
		if err := gguf.Encode(gguf.Type(typ), data, vals); err != nil {
			b.Fatal(err)
		}
		g := &GGML{Type: typ, Out: out, In: in, Data: data}
		ws[typ.String()] = &Weight{Out: out, In: in, DType: weights.U8, Data: data, GGML: g}
	}
	for _, m := range []int{128, 1} {
		x := randF32(rng, m*in)
		y := make([]float32, m*out)
		for _, name := range []string{"F32", "Q4_K", "Q6_K"} {
			w := ws[name]
			b.Run(fmt.Sprintf("m%d/%s", m, name), func(b *testing.B) {
				for b.Loop() {
					Linear(y, x, m, w, nil, 1)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			})
		}
	}
}

// TestGGMLSIMDPackExact checks that the AVX-512 packer of ggml weights
// writes the panels packGGML's loop writes, bit for bit, for full and
// partial panels and every K block.
func TestGGMLSIMDPackExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 6))
	for _, c := range []struct {
		typ     GGMLType
		out, in int
	}{{GGMLQ4_K, 50, 768}, {GGMLQ6_K, 97, 512}, {GGMLQ8_0, 33, 288}, {GGMLQ5_K, 64, 256}} {
		w := makeGGML(t, rng, c.typ, c.out, c.in, c.typ == GGMLQ6_K)
		src := newBSource(w)
		for _, nr := range []int{48, 16} {
			for pc := 0; pc < c.in; pc += kcBlock {
				kc := min(kcBlock, c.in-pc)
				panels := (c.out + nr - 1) / nr
				var got, want []float32
				for _, on := range []bool{true, false} {
					was := setAVX512(on)
					bp := make([]float32, panels*kc*nr)
					for i := range bp {
						bp[i] = float32(math.NaN())
					}
					src.pack(bp, pc, kc, 0, c.out, nr)
					setAVX512(was)
					if on {
						got = bp
					} else {
						want = bp
					}
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v %d×%d nr %d pc %d: packed value %d = %g, want %g", c.typ, c.out, c.in, nr, pc, i, got[i], want[i])
					}
				}
			}
		}
	}
}
