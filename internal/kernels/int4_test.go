package kernels

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// makeInt4 returns a random int4 weight: codes in [-8, 7], positive scales,
// and zero points when asym.
func makeInt4(rng *rand.Rand, out, in, group int, asym bool) *Weight {
	q := make([]int8, out*in)
	for i := range q {
		q[i] = int8(rng.IntN(16) - 8)
	}
	w := &Int4{Out: out, In: in, GroupSize: group, Packed: PackInt4(q, out, in)}
	w.Scales = make([]float32, out*w.Groups())
	for i := range w.Scales {
		w.Scales[i] = 0.01 + rng.Float32()*0.1
	}
	if asym {
		z := make([]int8, out*w.Groups())
		for i := range z {
			z[i] = int8(rng.IntN(16) - 8)
		}
		w.Zeros = PackInt4Columns(z, out, w.Groups())
	}
	return &Weight{Out: out, In: in, DType: weights.I32, Data: w.Packed, Int4: w}
}

// Linear with int4 weights (every implementation: gemv, each micro-kernel,
// Linear) agrees with linearRef, whose weight values are the plain
// definition (q - zero)·scale read one nibble at a time, at edge sizes:
// In not a multiple of 8, groups that do not divide In, per channel,
// symmetric and asymmetric with Out not a multiple of 8. Run also with
// -tags purego.
func TestLinearInt4(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 4))
	impls := append(linearImpls(), linearImpl{"Linear", Linear})
	for _, sh := range []struct{ out, in int }{{1, 1}, {7, 9}, {17, 33}, {50, 257}, {97, 130}, {9, 600}} {
		for _, g := range []int{0, 8, 32, 48, 128} {
			for _, asym := range []bool{false, true} {
				w := makeInt4(rng, sh.out, sh.in, g, asym)
				if err := w.Validate(); err != nil {
					t.Fatal(err)
				}
				for _, m := range []int{1, 3, 5, 17} {
					x := randF32(rng, m*sh.in)
					var bias []float32
					if m%2 == 1 {
						bias = randF32(rng, sh.out)
					}
					e := expectLinear(x, m, w, bias)
					for _, impl := range impls {
						name := fmt.Sprintf("%s/%dx%d/g%d/asym=%v/m=%d", impl.name, sh.out, sh.in, g, asym, m)
						y, check := guarded(m * sh.out)
						impl.run(y, x, m, w, bias, 1+m%2)
						check(t, name)
						e.check(t, name, y, sh.out)
					}
				}
			}
		}
	}
}

// DequantizeRow and widenRange equal the plain definition exactly, and the
// packers put code 8k+i of a row in bits 4i of word k (codes 0..7 of one
// row packed give 0x76543210 + 0x88888888).
func TestInt4Layout(t *testing.T) {
	p := PackInt4([]int8{0 - 8, 1 - 8, 2 - 8, 3 - 8, 4 - 8, 5 - 8, 6 - 8, 7 - 8, 7}, 1, 9)
	if len(p) != 8 || binary.LittleEndian.Uint32(p) != 0x76543210 || binary.LittleEndian.Uint32(p[4:]) != 15 {
		t.Fatalf("packed % x", p)
	}
	z := PackInt4Columns([]int8{-8, 7, -7, 6, -6, 5, -5, 4, -4}, 9, 1)
	if len(z) != 8 || binary.LittleEndian.Uint32(z) != 0xc3d2e1f0 || binary.LittleEndian.Uint32(z[4:]) != 4 {
		t.Fatalf("zero points % x", z)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, g := range []int{0, 5, 16} {
		w := makeInt4(rng, 11, 37, g, true)
		row := make([]float32, 37)
		for o := 0; o < 11; o++ {
			w.Int4.DequantizeRow(row, o)
			for i, v := range row {
				if v != w.at(o, i) {
					t.Fatalf("g%d: [%d][%d] = %v, want %v", g, o, i, v, w.at(o, i))
				}
			}
			for pc := 0; pc < 37; pc += 6 {
				part := make([]float32, min(13, 37-pc))
				w.Int4.widenRange(part, o, pc)
				for j, v := range part {
					if v != row[pc+j] {
						t.Fatalf("g%d: widenRange(%d, %d)[%d] = %v, want %v", g, o, pc, j, v, row[pc+j])
					}
				}
			}
		}
	}
}

// Rows(lo, hi) holds the values of outputs lo..hi-1, also for slices that
// do not start at a multiple of 8 (zero points repacked).
func TestInt4Rows(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	w := makeInt4(rng, 29, 21, 8, true)
	for _, r := range [][2]int{{0, 29}, {3, 17}, {8, 16}, {13, 29}} {
		q := w.Int4.Rows(r[0], r[1])
		if err := q.Validate(); err != nil {
			t.Fatal(err)
		}
		sub := &Weight{Out: q.Out, In: q.In, DType: weights.I32, Data: q.Packed, Int4: q}
		for o := 0; o < q.Out; o++ {
			for i := 0; i < q.In; i++ {
				if sub.at(o, i) != w.at(r[0]+o, i) {
					t.Fatalf("rows %v: [%d][%d] = %v, want %v", r, o, i, sub.at(o, i), w.at(r[0]+o, i))
				}
			}
		}
	}
}

// Validate refuses int4 data that does not fit the shape.
func TestValidateInt4(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for name, mod := range map[string]func(w *Weight){
		"short packed": func(w *Weight) { w.Int4.Packed = w.Int4.Packed[:len(w.Int4.Packed)-4] },
		"scales":       func(w *Weight) { w.Int4.Scales = w.Int4.Scales[1:] },
		"zeros":        func(w *Weight) { w.Int4.Zeros = w.Int4.Zeros[:4] },
		"in-major":     func(w *Weight) { w.InMajor = true },
		"no int4":      func(w *Weight) { w.Int4 = nil },
		"shape":        func(w *Weight) { w.Out++ },
	} {
		w := makeInt4(rng, 10, 20, 8, true)
		mod(w)
		if err := w.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Linear with int4 weights agrees with linearRef at the edge sizes of the
// assembly kernels: every m from 1 to 9 (the dot-product path up to 4, the
// blocked product above, rows of x in fours), Out and In not multiples of
// the tiles (16, 32 inputs a block of the dot kernel, 48 outputs a panel),
// In not a multiple of 8 (last word padded), groups of 32, 64, 128 and per
// channel (the kernel's), 48 (not a multiple of 32: the Go loop), a last
// group shorter than the others, symmetric and asymmetric. Run also with
// -tags purego and by TestInt4PortablePaths and TestInt4AVX2Paths.
func TestLinearInt4Edges(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 9))
	impls := append(linearImpls(), linearImpl{"Linear", Linear})
	for _, sh := range []struct{ out, in int }{{3, 31}, {17, 32}, {49, 97}, {50, 300}, {16, 264}, {33, 513}, {19, 256}, {5, 640}} {
		for _, g := range []int{0, 32, 64, 128, 48} {
			for _, asym := range []bool{false, true} {
				w := makeInt4(rng, sh.out, sh.in, g, asym)
				for m := 1; m <= 9; m++ {
					x := randF32(rng, m*sh.in)
					var bias []float32
					if m%3 == 0 {
						bias = randF32(rng, sh.out)
					}
					e := expectLinear(x, m, w, bias)
					for _, impl := range impls {
						name := fmt.Sprintf("%s/%dx%d/g%d/asym=%v/m=%d", impl.name, sh.out, sh.in, g, asym, m)
						y, check := guarded(m * sh.out)
						impl.run(y, x, m, w, bias, 1+m%2)
						check(t, name)
						e.check(t, name, y, sh.out)
					}
				}
			}
		}
	}
}

// widenRange equals the plain definition exactly on long runs (the
// assembly widener's blocks of 16) starting at even and odd inputs, across
// group boundaries, for every group size the kernels treat differently.
func TestInt4WidenExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 15))
	const out, in = 5, 301
	for _, g := range []int{0, 16, 32, 48, 128} {
		for _, asym := range []bool{false, true} {
			w := makeInt4(rng, out, in, g, asym)
			for o := 0; o < out; o++ {
				for _, r := range [][2]int{{0, in}, {1, 200}, {16, 64}, {30, 301}, {129, 290}, {256, 301}} {
					dst := make([]float32, r[1]-r[0])
					w.Int4.widenRange(dst, o, r[0])
					for j, v := range dst {
						if want := w.at(o, r[0]+j); v != want {
							t.Fatalf("g%d asym=%v: widenRange(%d, %v)[%d] = %v, want %v", g, asym, o, r, j, v, want)
						}
					}
				}
			}
		}
	}
}

// On a machine with AVX-512 or AVX2 the int4 weights of the forward pass
// take the fused dot kernels (so that the tests above cover them): per
// channel and groups of a multiple of 32, not groups of 48 or weights
// narrower than a block of 32 inputs.
func TestInt4FastPathsSelected(t *testing.T) {
	if !setAssembly(true) {
		t.Skip("no assembly: the fused int4 kernels do not run here")
	}
	rng := rand.New(rand.NewPCG(45, 47))
	for _, c := range []struct {
		in, group int
		want      bool
	}{{384, 0, true}, {384, 32, true}, {384, 64, true}, {384, 128, true}, {300, 128, true}, {384, 48, false}, {31, 0, false}} {
		w := makeInt4(rng, 8, c.in, c.group, false)
		y := make([]float32, 8)
		if got := rowsInt4Fast(y, randF32(rng, c.in), 1, w.Int4, 0, 8, nil); got != c.want {
			t.Errorf("in=%d group=%d: rowsInt4Fast = %v, want %v", c.in, c.group, got, c.want)
		}
	}
}

// TestInt4PortablePaths reruns the int4 comparisons with every assembly
// path turned off (the Go loops other architectures run).
func TestInt4PortablePaths(t *testing.T) {
	if !setAssembly(false) {
		t.Skip("no assembly paths on this machine: the other tests ran the portable code")
	}
	defer setAssembly(true)
	t.Run("LinearInt4", TestLinearInt4)
	t.Run("Edges", TestLinearInt4Edges)
	t.Run("Widen", TestInt4WidenExact)
}

// TestInt4AVX2Paths reruns the int4 comparisons with AVX-512 turned off
// (the AVX2 code of machines without AVX-512).
func TestInt4AVX2Paths(t *testing.T) {
	if !setAVX512(false) {
		t.Skip("no AVX-512 on this machine: the other tests ran the AVX2 code")
	}
	defer setAVX512(true)
	t.Run("LinearInt4", TestLinearInt4)
	t.Run("Edges", TestLinearInt4Edges)
	t.Run("Widen", TestInt4WidenExact)
}
