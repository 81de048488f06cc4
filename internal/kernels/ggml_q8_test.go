package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// q8TestRow returns n·256 activations: blocks of normal values at scales
// from 1e-6 to 1e4, an all-zero block, a block with one large value among
// tiny ones and values exactly halfway between two codes.
func q8TestRow(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n*256)
	for b := 0; b < n; b++ {
		xb := x[b*256 : (b+1)*256]
		switch b % 5 {
		case 1:
			// zeros
		case 2:
			for i := range xb {
				xb[i] = float32(rng.NormFloat64() * 1e-6)
			}
			xb[rng.IntN(256)] = 3e3
		case 3:
			for i := range xb {
				xb[i] = float32(rng.IntN(255)-127) + 0.5 // x/d = x·1 exactly on a half
			}
			xb[0] = 127
		default:
			s := math.Pow(10, float64(rng.IntN(11)-6))
			for i := range xb {
				xb[i] = float32(rng.NormFloat64() * s)
			}
		}
	}
	return x
}

// quantizeQ8K's codes are x/d rounded (|x − d·q| ≤ d/2), the block's
// largest |x| gets ±127, the sums of 16 are the codes' sums; zeros and
// non-finite blocks give zero codes with scale 0 and NaN.
func TestQuantizeQ8K(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 256))
	x := q8TestRow(rng, 10)
	x = append(x, make([]float32, 256)...)
	x[10*256+7] = float32(math.NaN())
	var q q8K
	quantizeQ8K(&q, x)
	if len(q.qs) != len(x) || len(q.d) != 11 || len(q.bsums) != 11*16 {
		t.Fatalf("sizes %d %d %d", len(q.qs), len(q.d), len(q.bsums))
	}
	for b := 0; b < 10; b++ {
		d := q.d[b]
		var amax float32
		var top int8
		for i := b * 256; i < (b+1)*256; i++ {
			c := q.qs[i]
			if c < -127 {
				t.Fatalf("block %d: code %d", b, c)
			}
			if e := math.Abs(float64(x[i]) - float64(d)*float64(c)); e > float64(d)*0.5000001 {
				t.Fatalf("block %d value %d: %g → %d·%g (error %g)", b, i, x[i], c, d, e)
			}
			if a := float32(math.Abs(float64(x[i]))); a > amax {
				amax, top = a, c
			}
		}
		if amax == 0 && d != 0 || amax != 0 && (top != 127 && top != -127 || d != amax/127) {
			t.Errorf("block %d: max |x| %g, its code %d, scale %g", b, amax, top, d)
		}
		for j := 0; j < 16; j++ {
			var s int
			for _, c := range q.qs[b*256+j*16 : b*256+j*16+16] {
				s += int(c)
			}
			if int(q.bsums[b*16+j]) != s {
				t.Fatalf("block %d sum %d: %d, want %d", b, j, q.bsums[b*16+j], s)
			}
		}
	}
	if d := q.d[10]; d == d {
		t.Errorf("a block with a NaN has scale %g, want NaN", d)
	}
}

var q8Kernels = []struct {
	typ   GGMLType
	block *ggmlSIMD
	plain func([]byte, *q8K) float32
}{
	{GGMLQ4_K, &ggmlSIMD{name: "Q4_K", blockLen: 256, blockBytes: 144}, dotQ4KQ8KGo},
	{GGMLQ6_K, &ggmlSIMD{name: "Q6_K", blockLen: 256, blockBytes: 210}, dotQ6KQ8KGo},
}

// The dot products of ggmlQ8Dot (assembly where the CPU has it) equal the
// plain loops bit for bit: the same exact integer sums and the same f32
// operations, on random blocks (every code, scale and minimum; f16 scales
// from zero and subnormals to 65504) and rows of 1 to 17 blocks.
func TestGGMLQ8DotSame(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	for _, k := range q8Kernels {
		for _, n := range []int{1, 2, 3, 4, 7, 8, 16, 17} {
			for rep := 0; rep < 20; rep++ {
				src := ggmlTestBlocks(rng, k.block, n)
				var q q8K
				quantizeQ8K(&q, q8TestRow(rng, n))
				got, want := ggmlQ8Dot[k.typ](src, &q), k.plain(src, &q)
				if !sameBits(got, want) {
					t.Fatalf("%v, %d blocks: %g (%#x), plain loop %g (%#x)", k.typ, n, got, math.Float32bits(got), want, math.Float32bits(want))
				}
			}
		}
	}
}

// The plain loops compute Σ w·(d·q) over the decoded weights w and the
// rounded activations d·q (to f32 rounding of the block sums), and Σ w·x
// to the activations' rounding (a relative error well under 1%).
func TestGGMLQ8DotValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 2))
	for _, k := range q8Kernels {
		for _, n := range []int{1, 2, 5} {
			src := ggmlTestBlocks(rng, k.block, n+2)[2*k.block.blockBytes:] // no all-ones/all-zeros blocks
			for b := 0; b < n; b++ {
				blk := src[b*k.block.blockBytes:]
				for _, off := range []int{0, 2} {
					if k.typ == GGMLQ6_K {
						off = 208
					}
					binary.LittleEndian.PutUint16(blk[off:], uint16(0x1800+rng.IntN(0x0c00))) // 0.002 to 0.016
				}
			}
			x := make([]float32, n*256)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			w := make([]float32, n*256)
			ggmlDecodeRow[k.typ](w, src)
			var q q8K
			quantizeQ8K(&q, x)
			var rounded, exact, mag float64
			for i := range w {
				rounded += float64(w[i]) * float64(q.d[i/256]) * float64(q.qs[i])
				exact += float64(w[i]) * float64(x[i])
				mag += math.Abs(float64(w[i]) * float64(x[i]))
			}
			got := float64(k.plain(src, &q))
			name := fmt.Sprintf("%v/%d blocks", k.typ, n)
			if math.Abs(got-rounded) > 1e-5*mag {
				t.Errorf("%s: %g, Σ w·(d·q) %g (Σ|w·x| %g)", name, got, rounded, mag)
			}
			if math.Abs(got-exact) > 0.01*mag {
				t.Errorf("%s: %g, Σ w·x %g (Σ|w·x| %g)", name, got, exact, mag)
			}
		}
	}
}

// With GGML.Q8Activations set, Linear on one row of x takes each output
// from the 8-bit-activation dot product (plus the bias), on any number of
// threads and for permuted rows; with it off (the default), from the exact
// dot product. More rows of x and other types are not affected.
func TestLinearGGMLQ8Option(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 3))
	for _, typ := range []GGMLType{GGMLQ4_K, GGMLQ6_K, GGMLQ8_0} {
		for _, permuted := range []bool{false, true} {
			w := makeGGML(t, rng, typ, 37, 512, permuted)
			x := randF32(rng, 2*512)
			bias := randF32(rng, 37)
			var q q8K
			quantizeQ8K(&q, x[:512])
			if w.GGML.Q8Activations || w.GGML.Rows(0, 37).Q8Activations {
				t.Fatal("8-bit activations are on by default")
			}
			for _, on := range []bool{false, true} {
				w.GGML.Q8Activations = on
				if w.GGML.Rows(1, 2).Q8Activations != on {
					t.Fatal("Rows drops Q8Activations")
				}
				for _, threads := range []int{1, 3} {
					y := make([]float32, 37)
					Linear(y, x[:512], 1, w, bias, threads)
					y2 := make([]float32, 2*37)
					Linear(y2, x, 2, w, nil, threads)
					for o := 0; o < 37; o++ {
						want := ggmlDotRow[typ](x[:512], w.GGML.Row(o))
						if dot := ggmlQ8Dot[typ]; on && dot != nil {
							want = dot(w.GGML.Row(o), &q)
						}
						if want += bias[o]; !sameBits(y[o], want) {
							t.Fatalf("%v perm=%v on=%v threads=%d: y[%d] = %g, want %g", typ, permuted, on, threads, o, y[o], want)
						}
					}
					y2on := append([]float32(nil), y2...)
					w.GGML.Q8Activations = false
					Linear(y2, x, 2, w, nil, threads)
					w.GGML.Q8Activations = on
					for i := range y2 {
						if !sameBits(y2[i], y2on[i]) {
							t.Fatalf("%v on=%v: two rows changed at %d", typ, on, i)
						}
					}
				}
			}
		}
	}
}

// BenchmarkGGMLQ8Dot compares, per weight type, the one-row product of a
// 512×2048 weight (in cache) by the exact dot product and by the 8-bit
// activations' (its rounding of x included).
//
//	go test ./internal/kernels -run - -bench GGMLQ8Dot -benchtime 200x
func BenchmarkGGMLQ8Dot(b *testing.B) {
	rng := rand.New(rand.NewPCG(8, 4))
	for _, typ := range []GGMLType{GGMLQ4_K, GGMLQ6_K} {
		w := makeGGML(b, rng, typ, 512, 2048, false)
		x := randF32(rng, 2048)
		y := make([]float32, 512)
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%v/q8=%v", typ, on), func(b *testing.B) {
				w.GGML.Q8Activations = on
				b.SetBytes(int64(len(w.Data)))
				for i := 0; i < b.N; i++ {
					Linear(y, x, 1, w, nil, 1)
				}
			})
		}
	}
}
