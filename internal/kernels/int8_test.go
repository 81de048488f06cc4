package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// int8Groups are the group sizes the int8 tests cover: per channel (0),
// multiples of 16 that divide 256 (each K block holds whole groups), 48
// (groups straddle the K blocks, and not a power of two: the gemv path
// falls back to widening rows) and 1 (the transposer's fallback too).
var int8Groups = []int{0, 1, 16, 32, 48, 64, 128}

// int8Shapes are weights of odd output counts (partial panels of 48 and 16,
// partial 16-row strips) with In over one K block (256) and not a multiple
// of 16 when per channel, and one within a single block.
var int8Shapes = []struct{ out, in int }{{67, 389}, {100, 75}}

// TestLinearInt8 compares every implementation of Linear, and Linear
// itself, with linearRef for int8 weights in both layouts, per channel and
// with groups, for every m from 1 to 70.
func TestLinearInt8(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	impls := append(linearImpls(), linearImpl{"Linear", Linear})
	const maxM = 70
	for _, inMajor := range []bool{false, true} {
		for _, g := range int8Groups {
			for _, sh := range int8Shapes {
				in := sh.in
				if g > 0 {
					in = (in + g - 1) / g * g
				}
				w := makeWeight(rng, sh.out, in, weights.I8, inMajor, g)
				x := randF32(rng, maxM*in)
				bias := randF32(rng, sh.out)
				// Rows are independent: the reference of the first m rows
				// is the first m rows of the reference.
				exp := map[bool]expectation{false: expectLinear(x, maxM, w, nil), true: expectLinear(x, maxM, w, bias)}
				for m := 1; m <= maxM; m++ {
					withBias := m%2 == 1
					e := exp[withBias]
					e = expectation{want: e.want[:m*sh.out], tol: e.tol[:m*sh.out]}
					var b []float32
					if withBias {
						b = bias
					}
					threads := 1 + m%3
					for _, impl := range impls {
						name := fmt.Sprintf("%s/inMajor=%v/group=%d/m=%d,out=%d,in=%d/bias=%v/threads=%d",
							impl.name, inMajor, g, m, sh.out, in, withBias, threads)
						y, check := guarded(m * sh.out)
						impl.run(y, x[:m*in], m, w, b, threads)
						check(t, name)
						e.check(t, name, y, sh.out)
					}
				}
			}
		}
	}
}

// TestPackExact checks that packing B is exact: every packed value is the
// reference's widened weight bit for bit (for int8 the f32 product of code
// and scale), with zeros past the last column, for every dtype, layout and
// group size, on blocks that start inside the weight.
func TestPackExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	type variant struct {
		d     weights.DType
		group int
	}
	variants := []variant{{weights.F32, 0}, {weights.F16, 0}, {weights.BF16, 0}}
	for _, g := range int8Groups {
		variants = append(variants, variant{weights.I8, g})
	}
	for _, nr := range []int{4, 16, 48} {
		for _, inMajor := range []bool{false, true} {
			for _, v := range variants {
				out, in := 421, 613
				if v.group > 0 {
					in = (in + v.group - 1) / v.group * v.group
				}
				w := makeWeight(rng, out, in, v.d, inMajor, v.group)
				src := newBSource(w)
				for _, blk := range []struct{ pc, kc, c0, c1 int }{
					{0, min(kcBlock, in), 0, min(out, ncPanels*nr)},
					{kcBlock, min(kcBlock, in-kcBlock), nr, min(out, nr+3*nr)},
					{2 * kcBlock, in - 2*kcBlock, out - out%nr - nr, out},
					{16, 37, 5, out},
				} {
					np := (blk.c1 - blk.c0 + nr - 1) / nr
					bp := make([]float32, np*blk.kc*nr)
					for i := range bp {
						bp[i] = guardVal
					}
					src.pack(bp, blk.pc, blk.kc, blk.c0, blk.c1, nr)
					for j := 0; j < np; j++ {
						for p := 0; p < blk.kc; p++ {
							for c := 0; c < nr; c++ {
								o := blk.c0 + j*nr + c
								var want float32
								if o < blk.c1 {
									want = w.at(o, blk.pc+p)
								}
								if got := bp[j*blk.kc*nr+p*nr+c]; math.Float32bits(got) != math.Float32bits(want) {
									t.Fatalf("nr=%d/%v/inMajor=%v/group=%d/block %+v: B[%d][%d] = %v, want %v",
										nr, v.d, inMajor, v.group, blk, blk.pc+p, o, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestInt8FastPathsSelected checks, on a machine with AVX-512, that the
// int8 weights the forward pass uses take the fused kernels (so that the
// tests above cover them): the gemv path for weights stored [Out][In] per
// channel and with groups of a power of two times 16.
func TestInt8FastPathsSelected(t *testing.T) {
	if !setAVX512(true) {
		t.Skip("no AVX-512: the fused int8 kernels do not run here")
	}
	rng := rand.New(rand.NewPCG(45, 46))
	for _, c := range []struct {
		inMajor bool
		group   int
		want    bool
	}{{false, 0, true}, {false, 32, true}, {false, 128, true}, {false, 48, false}, {false, 1, false}, {true, 0, false}} {
		w := makeWeight(rng, 8, 384, weights.I8, c.inMajor, c.group)
		if got := newBSource(w).hasRowI8(); got != c.want {
			t.Errorf("inMajor=%v group=%d: hasRowI8 = %v, want %v", c.inMajor, c.group, got, c.want)
		}
	}
}

// TestAVX2Paths reruns the comparisons with AVX-512 turned off, so
// that the AVX2 code that machines without AVX-512 run is tested here too.
func TestAVX2Paths(t *testing.T) {
	if !setAVX512(false) {
		t.Skip("no AVX-512 on this machine: the other tests ran the AVX2 code")
	}
	defer setAVX512(true)
	if activeKernel.name != "avx2_6x16" {
		t.Skip("no AVX2 on this machine")
	}
	t.Run("Linear", TestLinearAgainstReference)
	t.Run("LinearInt8", TestLinearInt8)
	t.Run("LinearRandom", TestLinearRandomShapes)
	t.Run("PackExact", TestPackExact)
	t.Run("MatMul", TestMatMulAgainstReference)
	t.Run("F16", TestF16Widening)
	t.Run("Quant", TestQuantKernelsMatchReference)
	t.Run("QuantGroups", TestQuantGroupKernelsMatchReference)
	t.Run("AbsmaxNonFinite", TestAbsmaxNonFinite)
}
