package kernels

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// kernelInputs returns n values that exercise the quantizer with scale s:
// exact ties k+0.5 (which round to even), values beyond ±127 steps, zeros
// of both signs, subnormals, and random values.
func kernelInputs(r *rand.Rand, n int, s float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch r.IntN(8) {
		case 0:
			x[i] = (float32(r.IntN(300)-150) + 0.5) * s // a tie, in range or not
		case 1:
			x[i] = float32(r.NormFloat64()) * 400 * s // often clamped
		case 2:
			x[i] = float32(math.Copysign(0, float64(r.IntN(2)*2-1)))
		case 3:
			x[i] = math.Float32frombits(uint32(r.IntN(1<<23))) * float32(r.IntN(2)*2-1) // subnormal
		case 4:
			x[i] = math.Nextafter32((float32(r.IntN(254)-127)+0.5)*s, float32(math.Inf(r.IntN(2)*2-1)))
		default:
			x[i] = float32(r.NormFloat64()) * 60 * s
		}
	}
	return x
}

// guardedBytes returns a slice of n bytes inside a buffer filled with 0xA5,
// and a check that the guard bytes around it are unchanged.
func guardedBytes(t *testing.T, n int) ([]byte, func()) {
	buf := bytes.Repeat([]byte{0xA5}, n+2*guard)
	return buf[guard : guard+n], func() {
		t.Helper()
		for i, b := range buf {
			if (i < guard || i >= guard+n) && b != 0xA5 {
				t.Fatalf("n=%d: byte %d outside the output changed", n, i-guard)
			}
		}
	}
}

// TestQuantKernelsMatchReference compares the int8 kernels and Widen with
// their references on every length up to 300, at unaligned starts too.
func TestQuantKernelsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n++ {
		for _, off := range []int{0, 1, 3} { // unaligned starts too
			s := float32(math.Ldexp(1+r.Float64(), r.IntN(40)-30))
			x := kernelInputs(r, n+off, s)[off:]

			if got, want := AbsMaxBits(x), absmaxRef(x); got != want {
				t.Fatalf("AbsMaxBits n=%d: %#x, want %#x", n, got, want)
			}

			dst, check := guardedBytes(t, n)
			QuantizeRun(dst, x, s)
			check()
			want := make([]byte, n)
			quantizeRunRef(want, x, s)
			if !bytes.Equal(dst, want) {
				t.Fatalf("QuantizeRun n=%d s=%g: %v, want %v", n, s, dst, want)
			}

			sv := make([]float32, n)
			for i := range sv {
				sv[i] = s * float32(1+r.IntN(4))
			}
			dst, check = guardedBytes(t, n)
			QuantizeEach(dst, x, sv)
			check()
			quantizeEachRef(want, x, sv)
			if !bytes.Equal(dst, want) {
				t.Fatalf("QuantizeEach n=%d: %v, want %v", n, dst, want)
			}

			acc := make([]uint32, n+2*guard)
			for i := range acc {
				acc[i] = uint32(r.Int32()) // below 1<<31, on 32-bit ints too
			}
			wantAcc := slices.Clone(acc)
			MaxAbsBitsInto(acc[guard:guard+n], x)
			maxAbsIntoRef(wantAcc[guard:guard+n], x)
			if !slices.Equal(acc, wantAcc) {
				t.Fatalf("MaxAbsBitsInto n=%d differs (or wrote outside)", n)
			}

			for _, d := range []weights.DType{weights.F32, weights.F16, weights.BF16} {
				src := make([]byte, d.Size()*n+off)
				for i := range src {
					src[i] = byte(r.Uint32())
				}
				src = src[off:]
				got := make([]float32, n+2*guard)
				for i := range got {
					got[i] = -7
				}
				wantF := slices.Clone(got)
				Widen(got[guard:guard+n], src, d)
				if err := weights.DecodeFloat32(wantF[guard:guard+n], src, d); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(wantF[i]) {
						t.Fatalf("Widen %v n=%d: element %d is %#x, want %#x", d, n, i-guard, math.Float32bits(got[i]), math.Float32bits(wantF[i]))
					}
				}
			}
		}
	}
}

// TestQuantGroupKernelsMatchReference compares the group kernels with their
// references for group sizes that the assembly takes whole and others.
func TestQuantGroupKernelsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, gs := range []int{1, 7, 8, 16, 24, 32, 48, 64, 80, 128, 136} {
		for groups := 0; groups <= 5; groups++ {
			n := gs * groups
			s := make([]float32, groups)
			for g := range s {
				s[g] = float32(math.Ldexp(1+r.Float64(), r.IntN(20)-15))
			}
			x := make([]float32, 0, n)
			for g := range groups {
				x = append(x, kernelInputs(r, gs, s[g])...)
			}
			bits := make([]uint32, groups+2*guard)
			wantBits := make([]uint32, len(bits))
			AbsMaxBitsGroups(bits[guard:guard+groups], x, gs)
			absmaxGroupsRef(wantBits[guard:guard+groups], x, gs)
			if !slices.Equal(bits, wantBits) {
				t.Fatalf("AbsMaxBitsGroups gs=%d groups=%d differs (or wrote outside)", gs, groups)
			}
			dst, check := guardedBytes(t, n)
			QuantizeGroups(dst, x, s, gs)
			check()
			want := make([]byte, n)
			quantizeGroupsRef(want, x, s, gs)
			if !bytes.Equal(dst, want) {
				t.Fatalf("QuantizeGroups gs=%d groups=%d: %v, want %v", gs, groups, dst, want)
			}
		}
	}
}

// TestAbsmaxNonFinite checks that an infinity or a NaN anywhere makes the
// maximum reach FiniteLimit, in every implementation and position.
func TestAbsmaxNonFinite(t *testing.T) {
	for _, bad := range []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -float32(math.NaN())} {
		for n := 1; n <= 100; n++ {
			for at := 0; at < n; at += 1 + at/3 {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(i) - 50
				}
				x[at] = bad
				if b := AbsMaxBits(x); b < FiniteLimit {
					t.Fatalf("AbsMaxBits of %d values with %v at %d: %#x", n, bad, at, b)
				}
				acc := make([]uint32, n)
				MaxAbsBitsInto(acc, x)
				if acc[at] < FiniteLimit {
					t.Fatalf("MaxAbsBitsInto with %v at %d: %#x", bad, at, acc[at])
				}
			}
		}
	}
}

// TestQuantizeValueRounding pins the reference definition: half to even,
// clamped to ±127.
func TestQuantizeValueRounding(t *testing.T) {
	for _, c := range []struct {
		v, s float32
		q    int8
	}{{0.5, 1, 0}, {1.5, 1, 2}, {2.5, 1, 2}, {-0.5, 1, 0}, {-2.5, 1, -2}, {126.5, 1, 126}, {127.5, 1, 127}, {1000, 1, 127}, {-1000, 1, -127}, {0.3, 0.1, 3}} {
		if q := QuantizeValue(c.v, c.s); q != c.q {
			t.Errorf("QuantizeValue(%g, %g) = %d, want %d", c.v, c.s, q, c.q)
		}
		dst := []byte{0}
		quantizeRunGo(dst, []float32{c.v}, c.s)
		if int8(dst[0]) != c.q {
			t.Errorf("quantizeRunGo(%g, %g) = %d, want %d", c.v, c.s, int8(dst[0]), c.q)
		}
	}
}
