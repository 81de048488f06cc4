package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// halfEdgeSizes are the lengths the fused half-precision dot products are
// checked at: around the 16-value vector, the 64-value step and a
// TinyLlama row.
var halfEdgeSizes = []int{0, 1, 3, 4, 5, 15, 16, 17, 31, 47, 63, 64, 65, 79, 127, 128, 129, 191, 2048, 2055}

// randHalves returns n random little-endian halves of dtype d (BF16 or F16)
// with ±0, subnormals and values near the top of the range sprinkled in.
func randHalves(rng *rand.Rand, d weights.DType, n int) []byte {
	b := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		var h uint16
		switch r := rng.IntN(16); {
		case r == 0:
			h = uint16(rng.IntN(2)) << 15 // ±0
		case r == 1:
			h = uint16(rng.IntN(2))<<15 | uint16(1+rng.IntN(0x7f)) // subnormal (both formats)
		case r == 2 && d == weights.BF16:
			h = weights.Float32ToBF16(float32(rng.NormFloat64() * 1e30))
		case r == 2:
			h = weights.Float32ToF16(float32(rng.NormFloat64() * 3e4))
		case d == weights.BF16:
			h = weights.Float32ToBF16(float32(rng.NormFloat64()))
		default:
			h = weights.Float32ToF16(float32(rng.NormFloat64()))
		}
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	return b
}

// TestDotHalfExact checks dotBF16 and dotF16 at edge sizes: bit for bit
// the result of dot on the row widened first (the path gemv took before,
// and the one the blocked product's widening shares), and within rounding
// of a float64 plain loop over the widened values. Run with the assembly
// on and off (the portable code), and in the purego build.
func TestDotHalfExact(t *testing.T) {
	run := func(t *testing.T) {
		rng := rand.New(rand.NewPCG(41, 42))
		for _, d := range []weights.DType{weights.BF16, weights.F16} {
			fused, widen := dotBF16, widenBF16Go
			if d == weights.F16 {
				fused, widen = dotF16, widenF16Go
			}
			for _, n := range halfEdgeSizes {
				for rep := 0; rep < 3; rep++ {
					// Slices at an odd offset in their arrays: no alignment assumed.
					x := randF32(rng, n+1)[1:]
					w := randHalves(rng, d, n+1)[2:]
					wide := make([]float32, n)
					widen(wide, w)
					got := fused(x, w)
					want := dot(x, wide)
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%v n=%d: fused %v (%#08x), widened then dot %v (%#08x)", d, n, got, math.Float32bits(got), want, math.Float32bits(want))
					}
					var ref, abs float64
					for i := range x {
						ref += float64(x[i]) * float64(wide[i])
						abs += math.Abs(float64(x[i]) * float64(wide[i]))
					}
					if diff := math.Abs(float64(got) - ref); diff > 1e-5*abs+1e-30 {
						t.Fatalf("%v n=%d: fused %v, float64 loop %v (|diff| %.3g)", d, n, got, ref, diff)
					}
				}
			}
		}
	}
	t.Run("default", run)
	if setAssembly(false) {
		defer setAssembly(true)
		t.Run("portable", run)
	}
}

// TestLinearHalfRows runs Linear at m ≤ gemvMaxM (the single-row path,
// rowsHalf: four outputs at a time, then one) on BF16 and F16 weights of
// edge widths, with and without bias, on 1 to 3 threads, against linearRef,
// leaving the memory around y alone; and every output is dotBF16 (dotF16)
// of its row, bit for bit. With the assembly on and off.
func TestLinearHalfRows(t *testing.T) {
	t.Run("default", testLinearHalfRows)
	if setAssembly(false) {
		defer setAssembly(true)
		t.Run("portable", testLinearHalfRows)
	}
}

func testLinearHalfRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, d := range []weights.DType{weights.BF16, weights.F16} {
		dotHalf := dotBF16
		if d == weights.F16 {
			dotHalf = dotF16
		}
		for _, in := range []int{1, 15, 16, 17, 64, 65, 127, 130, 2047, 2055} {
			for _, c := range []struct{ m, out int }{{1, 1}, {1, 67}, {2, 130}, {4, 200}} {
				w := makeWeight(rng, c.out, in, d, false, 0)
				x := randF32(rng, c.m*in)
				for _, bias := range [][]float32{nil, randF32(rng, c.out)} {
					exp := expectLinear(x, c.m, w, bias)
					for threads := 1; threads <= 3; threads++ {
						name := fmt.Sprintf("%v/m=%d,out=%d,in=%d/bias=%v/threads=%d", d, c.m, c.out, in, bias != nil, threads)
						y, check := guarded(c.m * c.out)
						Linear(y, x, c.m, w, bias, threads)
						check(t, name)
						exp.check(t, name, y, c.out)
						for i, got := range y {
							tt, o := i/c.out, i%c.out
							want := dotHalf(x[tt*in:(tt+1)*in], w.Data[2*o*in:2*(o+1)*in])
							if bias != nil {
								want += bias[o]
							}
							if math.Float32bits(got) != math.Float32bits(want) {
								t.Fatalf("%s: y[%d][%d] = %v, dot of the row %v", name, tt, o, got, want)
							}
						}
					}
				}
			}
		}
	}
}
