package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// ulps returns the distance between a and b in units in the last place of
// f32 (0 for equal values, both NaN, or equal infinities).
func ulps(a, b float32) float64 {
	if a == b || (a != a && b != b) {
		return 0
	}
	if a != a || b != b || math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) {
		return math.Inf(1)
	}
	ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if ia < 0x80000000 {
		ia = 0x80000000 + ia
	} else {
		ia = 0x80000000 - (ia - 0x80000000)
	}
	if ib < 0x80000000 {
		ib = 0x80000000 + ib
	} else {
		ib = 0x80000000 - (ib - 0x80000000)
	}
	return math.Abs(float64(ia - ib))
}

// opSizes are the row lengths the element-wise kernels are tested on: every
// length up to 40 (all vector tails) and some larger odd ones.
var opSizes = func() []int {
	s := []int{}
	for n := 0; n <= 40; n++ {
		s = append(s, n)
	}
	return append(s, 63, 64, 65, 127, 768, 1001, 3072)
}()

// inputs returns n test values: normal ones of the given scale, with special
// values mixed in at the start when n allows.
func inputs(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

// checkUnary compares an in-place element-wise kernel with its reference
// within maxULP ulps of the result plus tailAbs·|x|, with guard regions, on
// every size and on a sweep of inputs.
//
// tailAbs is for the GELUs: the reference (as PyTorch) rounds erf or tanh to
// f32 before computing 0.5·x·(1+erf), so near erf = -1 its 1+erf is off by up
// to 2⁻²⁵, far more than an ulp of the tiny result; the fast kernels compute
// 1+erf directly (as erfc, from a fit within 2⁻²⁴) and are closer to the
// truth. Together that is under 0.5·|x|·(2⁻²⁴+2⁻²⁵) < |x|·2⁻²⁴; the tests
// admit |x|·2⁻²³.
func checkUnary(t *testing.T, name string, fast, ref func([]float32), maxULP, tailAbs float64, scale float64, special []float32) {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, uint64(len(name))))
	run := func(x []float32, label string) {
		t.Helper()
		want := append([]float32(nil), x...)
		ref(want)
		got, check := guarded(len(x))
		copy(got, x)
		fast(got)
		check(t, name+"/"+label)
		for i := range x {
			d := ulps(got[i], want[i])
			if d <= maxULP {
				continue
			}
			ulp := math.Abs(float64(math.Nextafter32(want[i], float32(math.Inf(1))) - want[i]))
			if diff := math.Abs(float64(got[i] - want[i])); !(diff <= maxULP*ulp+tailAbs*math.Abs(float64(x[i]))) {
				t.Fatalf("%s/%s: f(%v) = %v, reference %v (%v ulps > %v, |diff| %.3g)", name, label, x[i], got[i], want[i], d, maxULP, diff)
			}
		}
	}
	for _, n := range opSizes {
		run(inputs(rng, n, scale), fmt.Sprintf("n=%d", n))
	}
	// A dense sweep over the interesting range, and the special values.
	sweep := make([]float32, 0, 40001)
	for i := -20000; i <= 20000; i++ {
		sweep = append(sweep, float32(float64(i)/20000*10*scale))
	}
	run(sweep, "sweep")
	if special != nil {
		run(special, "special")
	}
}

var specials = []float32{0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1e-45, -1e-45, 1, -1, 100, -100, 1e30, -1e30,
	float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}

func TestGELU(t *testing.T) {
	checkUnary(t, "GELU", GELU, geluRef, geluULP, 0x1p-23, 3, specials)
}

func TestGELUTanh(t *testing.T) {
	checkUnary(t, "GELUTanh", GELUTanh, geluTanhRef, geluTanhULP, 0x1p-23, 3, specials)
}

func TestSiLU(t *testing.T) {
	checkUnary(t, "SiLU", SiLU, siluRef, siluULP, 0, 4, specials)
}

func TestGELUValues(t *testing.T) {
	// Values of torch.nn.functional.gelu (erf form) and of the tanh form
	// (approximate="tanh"), computed in f64.
	for _, c := range []struct{ x, erf, tanh float64 }{
		{-3, -0.0040496968, -0.0036373920},
		{-1, -0.15865525, -0.15880801},
		{0.5, 0.34573123, 0.34571401},
		{2, 1.9544997, 1.9545977},
	} {
		x := []float32{float32(c.x)}
		GELU(x)
		if math.Abs(float64(x[0])-c.erf) > 1e-6*math.Max(1, math.Abs(c.erf)) {
			t.Errorf("GELU(%v) = %v, want %v", c.x, x[0], c.erf)
		}
		x[0] = float32(c.x)
		GELUTanh(x)
		if math.Abs(float64(x[0])-c.tanh) > 1e-6*math.Max(1, math.Abs(c.tanh)) {
			t.Errorf("GELUTanh(%v) = %v, want %v", c.x, x[0], c.tanh)
		}
	}
}

func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	for _, n := range opSizes {
		for _, scale := range []float64{1, 30} {
			x := inputs(rng, n, scale)
			if n > 3 {
				x[1] = float32(math.Inf(-1)) // a masked position
			}
			want := append([]float32(nil), x...)
			softmaxRef(want)
			got, check := guarded(n)
			copy(got, x)
			Softmax(got)
			check(t, fmt.Sprintf("Softmax n=%d", n))
			var sum float64
			for i := range got {
				if d := ulps(got[i], want[i]); d > softmaxULP && math.Abs(float64(got[i]-want[i])) > 1e-12 {
					t.Fatalf("Softmax n=%d scale=%v: [%d] = %v, reference %v (%v ulps)", n, scale, i, got[i], want[i], d)
				}
				sum += float64(got[i])
			}
			if n > 0 && math.Abs(sum-1) > 1e-5 {
				t.Fatalf("Softmax n=%d: sum %v", n, sum)
			}
		}
	}
	// Large values do not overflow: max subtraction.
	x := []float32{1000, 1000, -1000}
	Softmax(x)
	if x[0] != 0.5 || x[1] != 0.5 || x[2] != 0 {
		t.Fatalf("Softmax of large values = %v", x)
	}
}

func TestLayerNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 15))
	for _, n := range opSizes {
		if n == 0 {
			continue
		}
		x := inputs(rng, n, 2)
		for i := range x {
			x[i] += 5 // a mean far from 0
		}
		gamma, beta := inputs(rng, n, 1), inputs(rng, n, 1)
		for _, gb := range [][2][]float32{{nil, nil}, {gamma, beta}} {
			want := make([]float32, n)
			layerNormRef(want, x, gb[0], gb[1], 1e-12)
			got, check := guarded(n)
			LayerNorm(got, x, gb[0], gb[1], 1e-12)
			check(t, "LayerNorm")
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 2e-6*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("LayerNorm n=%d: [%d] = %v, reference %v", n, i, got[i], want[i])
				}
			}
			// In place.
			inPlace := append([]float32(nil), x...)
			LayerNorm(inPlace, inPlace, gb[0], gb[1], 1e-12)
			for i := range inPlace {
				if inPlace[i] != got[i] {
					t.Fatalf("LayerNorm in place differs at %d: %v vs %v", i, inPlace[i], got[i])
				}
			}
		}
	}
	// Without gamma/beta the output has mean 0 and variance 1.
	x := []float32{1, 2, 3, 4}
	LayerNorm(x, x, nil, nil, 0)
	if m := x[0] + x[1] + x[2] + x[3]; math.Abs(float64(m)) > 1e-6 {
		t.Fatalf("LayerNorm mean %v", m)
	}
	if v := (x[0]*x[0] + x[1]*x[1] + x[2]*x[2] + x[3]*x[3]) / 4; math.Abs(float64(v)-1) > 1e-6 {
		t.Fatalf("LayerNorm variance %v", v)
	}
}

func TestRMSNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 17))
	for _, n := range opSizes {
		if n == 0 {
			continue
		}
		x := inputs(rng, n, 3)
		w := inputs(rng, n, 1)
		for _, weight := range [][]float32{nil, w} {
			want := make([]float32, n)
			rmsNormRef(want, x, weight, 1e-5)
			got, check := guarded(n)
			RMSNorm(got, x, weight, 1e-5)
			check(t, "RMSNorm")
			for i := range got {
				if d := ulps(got[i], want[i]); d > 2 {
					t.Fatalf("RMSNorm n=%d: [%d] = %v, reference %v", n, i, got[i], want[i])
				}
			}
		}
	}
	x := []float32{3, 4}
	RMSNorm(x, x, nil, 0)
	// rms = sqrt(12.5)
	if want := float32(3 / math.Sqrt(12.5)); math.Abs(float64(x[0]-want)) > 1e-6 {
		t.Fatalf("RMSNorm = %v, want %v", x[0], want)
	}
}

func TestRoPE(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 19))
	for _, dh := range []int{2, 4, 32, 64, 80, 128} {
		inv := RoPEInvFreq(dh, 10000)
		for _, pos := range []int{0, 1, 7, 255, 4095} {
			x := inputs(rng, dh, 1)
			want := append([]float32(nil), x...)
			ropeRef(want, pos, inv)
			got, check := guarded(dh)
			copy(got, x)
			RoPE(got, pos, dh, 10000)
			check(t, "RoPE")
			for i := range got {
				if d := ulps(got[i], want[i]); d > 2 && math.Abs(float64(got[i]-want[i])) > 1e-6 {
					t.Fatalf("RoPE dh=%d pos=%d: [%d] = %v, reference %v", dh, pos, i, got[i], want[i])
				}
			}
			// A rotation keeps the norm of each pair.
			for i := 0; i < dh/2; i++ {
				a := math.Hypot(float64(x[i]), float64(x[i+dh/2]))
				b := math.Hypot(float64(got[i]), float64(got[i+dh/2]))
				if math.Abs(a-b) > 1e-5*(1+a) {
					t.Fatalf("RoPE dh=%d pos=%d: pair %d norm %v became %v", dh, pos, i, a, b)
				}
			}
		}
	}
	// Position 0 is the identity; the first pair at position 1 turns by 1 radian.
	x := []float32{1, 0, 0, 0}
	RoPE(x, 0, 4, 10000)
	if x[0] != 1 || x[2] != 0 {
		t.Fatalf("RoPE at 0 = %v", x)
	}
	RoPE(x, 1, 4, 10000)
	if math.Abs(float64(x[0])-math.Cos(1)) > 1e-7 || math.Abs(float64(x[2])-math.Sin(1)) > 1e-7 {
		t.Fatalf("RoPE at 1 = %v, want cos 1, sin 1 in [0], [2]", x)
	}
	// The inverse frequencies of Llama's defaults.
	inv := RoPEInvFreq(64, 500000)
	if want := math.Pow(500000, -2.0/64); inv[0] != 1 || math.Abs(float64(inv[1])-want) > 1e-7*want {
		t.Fatalf("RoPEInvFreq = %v", inv[:2])
	}
}

func TestEmbedding(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 21))
	for _, d := range []weights.DType{weights.F32, weights.F16, weights.BF16, weights.I8} {
		for _, g := range []int{0, 4} {
			if g > 0 && d != weights.I8 {
				continue
			}
			table := makeWeight(rng, 50, 36, d, false, g)
			for _, row := range []int{0, 1, 49} {
				got, check := guarded(36)
				Embedding(got, table, row)
				check(t, "Embedding")
				want := make([]float32, 36)
				embeddingRef(want, table, row)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("Embedding %v row %d: [%d] = %v, want %v", d, row, i, got[i], want[i])
					}
				}
			}
		}
	}
}

func TestRoPETable(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 23))
	// A scaled set of frequencies (as Llama 3's rope scaling produces).
	inv := RoPEInvFreq(64, 500000)
	for i := range inv {
		inv[i] /= float32(1 + i%3)
	}
	table := NewRoPETable(inv, 300)
	if table.Positions() != 300 {
		t.Fatalf("Positions = %d", table.Positions())
	}
	for _, pos := range []int{0, 1, 17, 299} {
		x := inputs(rng, 64, 1)
		want := append([]float32(nil), x...)
		RoPEFreq(want, pos, inv)
		got, check := guarded(64)
		copy(got, x)
		table.Apply(got, pos)
		check(t, "RoPETable.Apply")
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("pos %d: Apply [%d] = %v, RoPEFreq %v", pos, i, got[i], want[i])
			}
		}
	}
	// RoPE's kept tables and its direct path beyond them agree with ropeRef
	// exactly, including when the kept table grows.
	def := RoPEInvFreq(128, 10000)
	for _, pos := range []int{3, 1000, 70000, 5} {
		x := inputs(rng, 128, 1)
		want := append([]float32(nil), x...)
		ropeRef(want, pos, def)
		RoPE(x, pos, 128, 10000)
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(want[i]) {
				t.Fatalf("RoPE pos %d: [%d] = %v, reference %v", pos, i, x[i], want[i])
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Apply beyond the table did not panic")
		}
	}()
	table.Apply(make([]float32, 64), 300)
}
