package kernels

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// guard is the number of values on each side of an output slice that a
// kernel must leave untouched; guardVal is what they hold.
const guard = 37

var guardVal = float32(math.Float32frombits(0x7fc0dead)) // a NaN with a payload

// guarded returns a slice of n values with guard values before and after it
// inside the same backing array; check reports any guard that changed.
func guarded(n int) (s []float32, check func(t *testing.T, name string)) {
	buf := make([]float32, n+2*guard)
	for i := range buf {
		buf[i] = guardVal
	}
	s = buf[guard : guard+n]
	return s, func(t *testing.T, name string) {
		t.Helper()
		for i := 0; i < guard; i++ {
			if math.Float32bits(buf[i]) != math.Float32bits(guardVal) {
				t.Fatalf("%s: guard before the output changed at -%d: %v", name, guard-i, buf[i])
			}
			j := guard + n + i
			if math.Float32bits(buf[j]) != math.Float32bits(guardVal) {
				t.Fatalf("%s: guard after the output changed at +%d: %v", name, i, buf[j])
			}
		}
	}
}

func randF32(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// makeWeight builds a random out×in Weight in dtype d and layout inMajor;
// group is the int8 group size (0 per channel).
func makeWeight(rng *rand.Rand, out, in int, d weights.DType, inMajor bool, group int) *Weight {
	w := &Weight{Out: out, In: in, InMajor: inMajor, DType: d, Data: make([]byte, out*in*d.Size())}
	for i := 0; i < out*in; i++ {
		v := float32(rng.NormFloat64() * 0.5)
		switch d {
		case weights.F32:
			binary.LittleEndian.PutUint32(w.Data[4*i:], math.Float32bits(v))
		case weights.F16:
			binary.LittleEndian.PutUint16(w.Data[2*i:], weights.Float32ToF16(v))
		case weights.BF16:
			binary.LittleEndian.PutUint16(w.Data[2*i:], weights.Float32ToBF16(v))
		case weights.I8:
			w.Data[i] = byte(int8(rng.IntN(255) - 127))
		}
	}
	if d == weights.I8 {
		w.GroupSize = group
		n := out
		if group > 0 {
			n = out * (in / group)
		}
		w.Scales = make([]float32, n)
		for i := range w.Scales {
			w.Scales[i] = float32(0.001 + rng.Float64()*0.02)
		}
	}
	if err := w.Validate(); err != nil {
		panic(err)
	}
	return w
}

// linearTol is the tolerance of a fast Linear against linearRef: the two sum
// the same f32 products in different orders, so they may differ by a few
// roundings of the partial sums: |fast-ref| ≤ 1e-5·Σ|x·w| (+ a tiny absolute
// term for all-zero rows).
const linearTol = 1e-5

// expectation holds linearRef's result and the tolerance of every output.
type expectation struct {
	want []float32
	tol  []float64
}

// expectLinear runs linearRef and computes, for each output (t, o), the
// tolerance linearTol·(Σ_i |x[t][i]·W[o][i]| + |bias[o]|).
func expectLinear(x []float32, m int, w *Weight, bias []float32) expectation {
	e := expectation{want: make([]float32, m*w.Out), tol: make([]float64, m*w.Out)}
	linearRef(e.want, x, m, w, bias)
	dense := make([]float32, w.Out*w.In)
	for o := 0; o < w.Out; o++ {
		for i := 0; i < w.In; i++ {
			dense[o*w.In+i] = w.at(o, i)
		}
	}
	for t := 0; t < m; t++ {
		for o := 0; o < w.Out; o++ {
			var s float64
			for i := 0; i < w.In; i++ {
				s += math.Abs(float64(x[t*w.In+i]) * float64(dense[o*w.In+i]))
			}
			if bias != nil {
				s += math.Abs(float64(bias[o]))
			}
			e.tol[t*w.Out+o] = linearTol*s + 1e-30
		}
	}
	return e
}

func (e expectation) check(t *testing.T, name string, got []float32, out int) {
	t.Helper()
	for i, g := range got {
		if d := math.Abs(float64(g) - float64(e.want[i])); !(d <= e.tol[i]) {
			t.Fatalf("%s: y[%d][%d] = %v, reference %v (|diff| %.3g > tol %.3g)", name, i/out, i%out, g, e.want[i], d, e.tol[i])
		}
	}
}

type linearCase struct{ m, out, in int }

var linearCases = []linearCase{
	{1, 1, 1}, {1, 7, 3}, {2, 5, 17}, {3, 48, 16}, {1, 49, 64},
	{7, 17, 33}, {8, 48, 256}, {9, 97, 257}, {13, 16, 300}, {6, 130, 129},
	{17, 400, 70}, {33, 50, 513}, {12, 385, 96}, {64, 96, 64}, {5, 1000, 9}, {2, 200, 130}, {3, 129, 64},
	// A packed on several goroutines (packAParallel) at threads 2 and 3.
	{50, 24, 1100},
}

func linearVariants() (out []struct {
	d       weights.DType
	inMajor bool
	group   int
}) {
	for _, d := range []weights.DType{weights.F32, weights.F16, weights.BF16, weights.I8} {
		for _, im := range []bool{false, true} {
			groups := []int{0}
			if d == weights.I8 {
				groups = []int{0, 1, 4, 32}
			}
			for _, g := range groups {
				out = append(out, struct {
					d       weights.DType
					inMajor bool
					group   int
				}{d, im, g})
			}
		}
	}
	return out
}

// linearImpl is one way of computing Linear that the tests compare with
// linearRef: each micro-kernel in the blocked product, and gemv.
type linearImpl struct {
	name string
	run  func(y, x []float32, m int, w *Weight, bias []float32, threads int)
}

func linearImpls() []linearImpl {
	impls := []linearImpl{{"gemv", gemv}}
	for _, mk := range availableKernels() {
		impls = append(impls, linearImpl{mk.name, func(y, x []float32, m int, w *Weight, bias []float32, threads int) {
			gemmWith(mk, y, x, m, w, bias, threads)
		}})
	}
	return impls
}

func TestLinearAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mk := range linearImpls() {
		for _, v := range linearVariants() {
			for _, c := range linearCases {
				in := c.in
				if v.group > 0 && in%v.group != 0 {
					in = (in/v.group + 1) * v.group
				}
				w := makeWeight(rng, c.out, in, v.d, v.inMajor, v.group)
				x := randF32(rng, c.m*in)
				for _, withBias := range []bool{false, true} {
					var bias []float32
					if withBias {
						bias = randF32(rng, c.out)
					}
					exp := expectLinear(x, c.m, w, bias)
					for _, threads := range []int{1, 2, 3} {
						name := fmt.Sprintf("%s/%v/inMajor=%v/group=%d/m=%d,out=%d,in=%d/bias=%v/threads=%d",
							mk.name, v.d, v.inMajor, v.group, c.m, c.out, in, withBias, threads)
						y, check := guarded(c.m * c.out)
						mk.run(y, x, c.m, w, bias, threads)
						check(t, name)
						exp.check(t, name, y, c.out)
					}
				}
			}
		}
	}
}

func TestLinearPublic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	w := makeWeight(rng, 70, 90, weights.BF16, false, 0)
	x := randF32(rng, 5*90)
	bias := randF32(rng, 70)
	exp := expectLinear(x, 5, w, bias)
	y, check := guarded(5 * 70)
	Linear(y, x, 5, w, bias, 2)
	check(t, "Linear")
	exp.check(t, "Linear", y, 70)

	// m = 0 writes nothing.
	y0, check0 := guarded(0)
	Linear(y0, nil, 0, w, nil, 1)
	check0(t, "Linear m=0")
}

func TestLinearPanicsOnBadArguments(t *testing.T) {
	w := &Weight{Out: 2, In: 3, DType: weights.F32, Data: make([]byte, 24)}
	for name, f := range map[string]func(){
		"short x":    func() { Linear(make([]float32, 4), make([]float32, 5), 2, w, nil, 1) },
		"short y":    func() { Linear(make([]float32, 3), make([]float32, 6), 2, w, nil, 1) },
		"short bias": func() { Linear(make([]float32, 4), make([]float32, 6), 2, w, []float32{1}, 1) },
		"bad weight": func() {
			Linear(make([]float32, 4), make([]float32, 6), 2, &Weight{Out: 2, In: 3, DType: weights.F32}, nil, 1)
		},
		"negative m":  func() { Linear(nil, nil, -1, w, nil, 1) },
		"short b":     func() { MatMul(make([]float32, 4), make([]float32, 6), make([]float32, 5), 2, 2, 3, false, 1) },
		"embed range": func() { Embedding(make([]float32, 3), w, 2) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("no panic")
				}
				if s := fmt.Sprint(r); len(s) < 8 || s[:8] != "kernels:" {
					t.Fatalf("panic %q does not start with kernels:", s)
				}
			}()
			f()
		})
	}
}

func TestValidate(t *testing.T) {
	ok := func(w Weight) *Weight { return &w }
	good := []*Weight{
		ok(Weight{Out: 2, In: 3, DType: weights.F32, Data: make([]byte, 24)}),
		ok(Weight{Out: 2, In: 3, DType: weights.F16, Data: make([]byte, 12), InMajor: true}),
		ok(Weight{Out: 2, In: 3, DType: weights.BF16, Data: make([]byte, 12)}),
		ok(Weight{Out: 2, In: 3, DType: weights.I8, Data: make([]byte, 6), Scales: make([]float32, 2)}),
		ok(Weight{Out: 2, In: 4, DType: weights.I8, Data: make([]byte, 8), Scales: make([]float32, 4), GroupSize: 2}),
	}
	for i, w := range good {
		if err := w.Validate(); err != nil {
			t.Errorf("good %d: %v", i, err)
		}
	}
	bad := map[string]*Weight{
		"zero shape":      ok(Weight{Out: 0, In: 3, DType: weights.F32}),
		"dtype":           ok(Weight{Out: 2, In: 3, DType: weights.F64, Data: make([]byte, 48)}),
		"short data":      ok(Weight{Out: 2, In: 3, DType: weights.F32, Data: make([]byte, 23)}),
		"long data":       ok(Weight{Out: 2, In: 3, DType: weights.F16, Data: make([]byte, 13)}),
		"scales on f32":   ok(Weight{Out: 2, In: 3, DType: weights.F32, Data: make([]byte, 24), Scales: make([]float32, 2)}),
		"no scales":       ok(Weight{Out: 2, In: 3, DType: weights.I8, Data: make([]byte, 6)}),
		"group divides":   ok(Weight{Out: 2, In: 3, DType: weights.I8, Data: make([]byte, 6), Scales: make([]float32, 2), GroupSize: 2}),
		"group scales":    ok(Weight{Out: 2, In: 4, DType: weights.I8, Data: make([]byte, 8), Scales: make([]float32, 2), GroupSize: 2}),
		"negative group":  ok(Weight{Out: 2, In: 4, DType: weights.I8, Data: make([]byte, 8), Scales: make([]float32, 2), GroupSize: -2}),
		"overflow":        ok(Weight{Out: math.MaxInt / 2, In: 4, DType: weights.F32}),
		"group on bf16":   ok(Weight{Out: 2, In: 4, DType: weights.BF16, Data: make([]byte, 16), GroupSize: 2}),
		"negative output": ok(Weight{Out: -2, In: 4, DType: weights.F32}),
	}
	for name, w := range bad {
		if err := w.Validate(); !errors.Is(err, ErrInvalidWeight) {
			t.Errorf("%s: Validate = %v, want ErrInvalidWeight", name, err)
		}
	}
}

func TestMatMulAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cases := []struct{ m, n, k int }{
		{1, 1, 1}, {1, 64, 64}, {3, 5, 7}, {128, 128, 64}, {128, 64, 128}, {9, 50, 300}, {17, 33, 1},
	}
	for _, mk := range linearImpls() {
		for _, c := range cases {
			for _, transB := range []bool{false, true} {
				a := randF32(rng, c.m*c.k)
				b := randF32(rng, c.k*c.n)
				w := Weight{Out: c.n, In: c.k, InMajor: !transB, DType: weights.F32, Data: f32Bytes(b)}
				exp := expectLinear(a, c.m, &w, nil)
				want := make([]float32, c.m*c.n)
				matmulRef(want, a, b, c.m, c.n, c.k, transB)
				for i := range want {
					if want[i] != exp.want[i] {
						t.Fatalf("matmulRef and linearRef disagree at %d: %v, %v", i, want[i], exp.want[i])
					}
				}
				for _, threads := range []int{1, 2} {
					name := fmt.Sprintf("%s/m=%d,n=%d,k=%d/transB=%v/threads=%d", mk.name, c.m, c.n, c.k, transB, threads)
					got, check := guarded(c.m * c.n)
					mk.run(got, a, c.m, &w, nil, threads)
					check(t, name)
					exp.check(t, name, got, c.n)
				}
			}
		}
	}
	// The public entry, and k = 0 (c = 0).
	a, b := randF32(rng, 6*4), randF32(rng, 4*5)
	w := Weight{Out: 5, In: 4, DType: weights.F32, Data: f32Bytes(b)}
	exp := expectLinear(a, 6, &w, nil)
	got, check := guarded(6 * 5)
	MatMul(got, a, b, 6, 5, 4, true, 2)
	check(t, "MatMul")
	exp.check(t, "MatMul", got, 5)
	got0, check0 := guarded(6)
	for i := range got0 {
		got0[i] = 7
	}
	MatMul(got0, nil, nil, 2, 3, 0, false, 1)
	check0(t, "MatMul k=0")
	for i, v := range got0 {
		if v != 0 {
			t.Fatalf("MatMul k=0: c[%d] = %v, want 0", i, v)
		}
	}
}

// TestLinearUnalignedF32 runs an F32 weight whose bytes are not 4-aligned
// (possible in an mmap'd checkpoint), which takes the byte-decoding path.
func TestLinearUnalignedF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	w := makeWeight(rng, 33, 20, weights.F32, false, 0)
	buf := make([]byte, len(w.Data)+1)
	copy(buf[1:], w.Data)
	w.Data = buf[1:]
	x := randF32(rng, 3*20)
	exp := expectLinear(x, 3, w, nil)
	y, check := guarded(3 * 33)
	Linear(y, x, 3, w, nil, 1)
	check(t, "unaligned")
	exp.check(t, "unaligned", y, 33)
}

func TestF16Widening(t *testing.T) {
	// Every half bit pattern widens exactly (the reference is x448/float16),
	// NaNs too: quieted with their payload kept, as F16C does, so that a row
	// widens to the same bits whichever part of it the assembly takes.
	src := make([]byte, 2*65536)
	for h := 0; h < 65536; h++ {
		binary.LittleEndian.PutUint16(src[2*h:], uint16(h))
	}
	dst := make([]float32, 65536)
	widenF16(dst, src)
	goDst := make([]float32, 65536)
	widenF16Go(goDst, src)
	for h := 0; h < 65536; h++ {
		want := weights.F16ToFloat32(uint16(h))
		for _, got := range []float32{dst[h], goDst[h]} {
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("half %#04x widened to %v (%#08x), want %v (%#08x)", h, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

// TestPortablePaths reruns the comparisons with every assembly path turned
// off, so that the Go code other architectures run is tested here too.
func TestPortablePaths(t *testing.T) {
	if !setAssembly(false) {
		t.Skip("no assembly paths on this machine: the other tests ran the portable code")
	}
	defer setAssembly(true)
	if activeKernel != &goKernel {
		t.Fatal("assembly still selected")
	}
	t.Run("Linear", TestLinearAgainstReference)
	t.Run("LinearInt8", TestLinearInt8)
	t.Run("LinearGGML", TestLinearGGML)
	t.Run("PackExact", TestPackExact)
	t.Run("MatMul", TestMatMulAgainstReference)
	t.Run("F16", TestF16Widening)
	t.Run("GELU", TestGELU)
	t.Run("GELUTanh", TestGELUTanh)
	t.Run("SiLU", TestSiLU)
	t.Run("Softmax", TestSoftmax)
	t.Run("Embedding", TestEmbedding)
	t.Run("Quant", TestQuantKernelsMatchReference)
	t.Run("QuantGroups", TestQuantGroupKernelsMatchReference)
	t.Run("AbsmaxNonFinite", TestAbsmaxNonFinite)
}

// TestLinearRandomShapes compares every implementation with linearRef on
// random small shapes, dtypes, layouts, group sizes and thread counts.
func TestLinearRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	impls := linearImpls()
	variants := linearVariants()
	for iter := 0; iter < 150; iter++ {
		v := variants[rng.IntN(len(variants))]
		m, out, in := 1+rng.IntN(40), 1+rng.IntN(120), 1+rng.IntN(300)
		if v.group > 0 {
			in = v.group * (1 + rng.IntN(300/v.group+1))
		}
		w := makeWeight(rng, out, in, v.d, v.inMajor, v.group)
		x := randF32(rng, m*in)
		var bias []float32
		if rng.IntN(2) == 0 {
			bias = randF32(rng, out)
		}
		exp := expectLinear(x, m, w, bias)
		impl := impls[rng.IntN(len(impls))]
		threads := 1 + rng.IntN(4)
		name := fmt.Sprintf("%s/%v/inMajor=%v/group=%d/m=%d,out=%d,in=%d/bias=%v/threads=%d",
			impl.name, v.d, v.inMajor, v.group, m, out, in, bias != nil, threads)
		y, check := guarded(m * out)
		impl.run(y, x, m, w, bias, threads)
		check(t, name)
		exp.check(t, name, y, out)
	}
}
