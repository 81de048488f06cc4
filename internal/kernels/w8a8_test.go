package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// w8a8Case builds a W8A8 weight of random codes in [-128, 127] (or all
// fill when fill != 0) with random positive scales.
func w8a8Case(rng *rand.Rand, out, in int, inMajor bool, fill int8) *Weight {
	w := &Weight{Out: out, In: in, InMajor: inMajor, DType: weights.I8, Data: make([]byte, out*in),
		Scales: make([]float32, out), W8A8: new(W8A8)}
	for k := range w.Data {
		w.Data[k] = byte(int8(rng.IntN(256) - 128))
		if fill != 0 {
			w.Data[k] = byte(fill)
		}
	}
	for o := range w.Scales {
		w.Scales[o] = 0.001 + rng.Float32()*0.02
	}
	return w
}

// w8a8Input is m rows of random activations; row 1 is all zero, row 2
// has one large value (its other codes round to small ones), row 3 is a
// constant negative value (every code −127).
func w8a8Input(rng *rand.Rand, m, in int) []float32 {
	x := make([]float32, m*in)
	for k := range x {
		x[k] = float32(rng.NormFloat64())
	}
	if m > 1 {
		clear(x[in : 2*in])
	}
	if m > 2 {
		x[2*in+rng.IntN(in)] = 1e4
	}
	if m > 3 {
		for k := 3 * in; k < 4*in; k++ {
			x[k] = -3.5
		}
	}
	return x
}

func sameFloats(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for k := range want {
		g, w := got[k], want[k]
		if g != w && !(g != g && w != w) {
			t.Fatalf("%s: element %d = %v, reference %v", what, k, g, w)
		}
	}
}

// TestW8A8TilesMatchReference runs every W8A8 tile this machine has
// against w8a8Ref, bit for bit: row counts 1 to 9 (blocks of six and
// partial ones), output counts around the panel width of 64, odd input
// counts (groups of four padded), both layouts, with and without bias, one
// and three goroutines.
func TestW8A8TilesMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, impl := range w8a8Impls() {
		for _, out := range []int{1, 17, 64, 65, 130} {
			for _, in := range []int{1, 3, 4, 5, 33, 67} {
				for m := 1; m <= 9; m++ {
					inMajor := rng.IntN(2) == 0
					w := w8a8Case(rng, out, in, inMajor, 0)
					x := w8a8Input(rng, m, in)
					var bias []float32
					if rng.IntN(2) == 0 {
						bias = make([]float32, out)
						for o := range bias {
							bias[o] = float32(rng.NormFloat64())
						}
					}
					want := make([]float32, m*out)
					w8a8Ref(want, x, m, w, bias)
					got := make([]float32, m*out)
					linearW8A8With(impl, got, x, m, w, bias, 1+2*rng.IntN(2))
					sameFloats(t, impl.name, got, want)
				}
			}
		}
	}
}

// TestW8A8Extremes: codes all −128 against activations all ±127 on long
// rows (the largest sums; the AVX2 pair sums at their bound), and a row
// holding a NaN (its outputs NaN, the other rows unchanged).
func TestW8A8Extremes(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, impl := range w8a8Impls() {
		for _, fill := range []int8{-128, 127} {
			const m, out, in = 7, 70, 4099
			w := w8a8Case(rng, out, in, false, fill)
			x := make([]float32, m*in)
			for k := range x {
				x[k] = []float32{-2, 2}[k/in%2]
			}
			x[5*in+7] = float32(math.NaN())
			want := make([]float32, m*out)
			w8a8Ref(want, x, m, w, nil)
			if want[0] == 0 || !math.IsNaN(float64(want[5*out])) || math.IsNaN(float64(want[4*out])) {
				t.Fatalf("reference: %v %v %v", want[0], want[5*out], want[4*out])
			}
			got := make([]float32, m*out)
			linearW8A8With(impl, got, x, m, w, nil, 2)
			sameFloats(t, impl.name, got, want)
		}
	}
}

// TestW8A8Linear goes through Linear with each instruction set turned off
// in turn (the default build, then without AVX-512 VNNI, without AVX-VNNI,
// without all three), and checks that the reference is the loop it says:
// against int8 weight-only Linear on activations that are exact int8 codes
// times a power of two.
func TestW8A8Linear(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	defer setW8A8Features(true, true, true)
	for _, f := range [][3]bool{{true, true, true}, {false, true, true}, {false, false, true}, {false, false, false}} {
		setW8A8Features(f[0], f[1], f[2])
		const m, out, in = 9, 100, 77
		w := w8a8Case(rng, out, in, false, 0)
		x := w8a8Input(rng, m, in)
		want := make([]float32, m*out)
		w8a8Ref(want, x, m, w, nil)
		got := make([]float32, m*out)
		Linear(got, x, m, w, nil, 2)
		sameFloats(t, w8a8Active().name, got, want)
	}
	// Long rows: the activations are quantized by two goroutines.
	{
		const m, out, in = 14, 70, 10001 // 14·10001 ≥ 2·65536
		w := w8a8Case(rng, out, in, true, 0)
		x := w8a8Input(rng, m, in)
		want := make([]float32, m*out)
		w8a8Ref(want, x, m, w, nil)
		got := make([]float32, m*out)
		Linear(got, x, m, w, nil, 2)
		sameFloats(t, "long rows", got, want)
	}
	// x = codes/64 with a ±127/64 in every row: the activation scale is
	// 1/64 and the codes are exact, so W8A8 equals the float product.
	const m, out, in = 5, 20, 40
	w := w8a8Case(rng, out, in, false, 0)
	x := make([]float32, m*in)
	for k := range x {
		x[k] = float32(rng.IntN(255)-127) / 64
	}
	for r := 0; r < m; r++ {
		x[r*in] = 127.0 / 64
	}
	got := make([]float32, m*out)
	Linear(got, x, m, w, nil, 1)
	for r := 0; r < m; r++ {
		for o := 0; o < out; o++ {
			var s float64
			for k := 0; k < in; k++ {
				s += float64(x[r*in+k]) * float64(int8(w.Data[o*in+k]))
			}
			want := s * float64(w.Scales[o])
			if d := math.Abs(float64(got[r*out+o]) - want); d > 1e-5*math.Max(1, math.Abs(want)) {
				t.Fatalf("row %d output %d: %v, exact %v", r, o, got[r*out+o], want)
			}
		}
	}
}

// A Transient W8A8 weight gives the same results and keeps no packed copy.
func TestW8A8Transient(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	const m, out, in = 7, 70, 45
	w := w8a8Case(rng, out, in, false, 0)
	w.W8A8.Transient = true
	x := w8a8Input(rng, m, in)
	want := make([]float32, m*out)
	w8a8Ref(want, x, m, w, nil)
	got := make([]float32, m*out)
	Linear(got, x, m, w, nil, 2)
	sameFloats(t, "transient", got, want)
	if w.W8A8.p != nil {
		t.Error("a transient W8A8 weight kept its packed copy")
	}
	w.W8A8.Transient = false
	Linear(got, x, m, w, nil, 2)
	if w.W8A8.p == nil {
		t.Error("a W8A8 weight did not keep its packed copy")
	}
}

// TestW8A8Validate: a W8A8 weight must be per-channel I8 with rows whose
// sums fit in int32.
func TestW8A8Validate(t *testing.T) {
	w := &Weight{Out: 2, In: 4, DType: weights.I8, Data: make([]byte, 8), Scales: make([]float32, 4), GroupSize: 2, W8A8: new(W8A8)}
	if err := w.Validate(); err == nil {
		t.Fatal("grouped W8A8 weight accepted")
	}
	w = &Weight{Out: 2, In: 4, DType: weights.F32, Data: make([]byte, 32), W8A8: new(W8A8)}
	if err := w.Validate(); err == nil {
		t.Fatal("F32 W8A8 weight accepted")
	}
	w = &Weight{Out: 1, In: w8a8MaxIn + 1, DType: weights.I8, Data: make([]byte, w8a8MaxIn+1), Scales: make([]float32, 1), W8A8: new(W8A8)}
	if err := w.Validate(); err == nil {
		t.Fatal("W8A8 weight with rows too long for int32 sums accepted")
	}
}

// BenchmarkLinearW8A8: TinyLlama's gate projection (5632×2048) on 128
// rows, each W8A8 tile and int8 weight-only, one goroutine.
func BenchmarkLinearW8A8(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 11))
	const m, out, in = 128, 5632, 2048
	w := w8a8Case(rng, out, in, false, 0)
	x := w8a8Input(rng, m, in)
	y := make([]float32, m*out)
	for _, impl := range w8a8Impls() {
		b.Run(impl.name, func(b *testing.B) {
			linearW8A8With(impl, y, x, m, w, nil, 1)
			b.SetBytes(2 * m * out * in) // "bytes" are multiply-adds ×2: MB/s reads as MFLOP/s
			for b.Loop() {
				linearW8A8With(impl, y, x, m, w, nil, 1)
			}
		})
	}
	b.Run("int8_weight_only", func(b *testing.B) {
		wo := *w
		wo.W8A8 = nil
		b.SetBytes(2 * m * out * in)
		for b.Loop() {
			Linear(y, x, m, &wo, nil, 1)
		}
	})
}

// BenchmarkLinearW8A8Rows: TinyLlama's gate projection on 1 and 4 rows
// (decoding), W8A8 against int8 weight-only (its gemv path), one goroutine.
func BenchmarkLinearW8A8Rows(b *testing.B) {
	rng := rand.New(rand.NewPCG(12, 12))
	const out, in = 5632, 2048
	w := w8a8Case(rng, out, in, false, 0)
	wo := *w
	wo.W8A8 = nil
	for _, m := range []int{1, 4} {
		x := w8a8Input(rng, m, in)
		y := make([]float32, m*out)
		for _, c := range []struct {
			name string
			w    *Weight
		}{{"w8a8", w}, {"int8_weight_only", &wo}} {
			b.Run(fmt.Sprintf("m=%d/%s", m, c.name), func(b *testing.B) {
				Linear(y, x, m, c.w, nil, 1)
				for b.Loop() {
					Linear(y, x, m, c.w, nil, 1)
				}
			})
		}
	}
}
