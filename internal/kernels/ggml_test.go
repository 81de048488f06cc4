package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/weights"
)

var ggmlTypes = []GGMLType{GGMLF32, GGMLF16, GGMLBF16, GGMLQ4_0, GGMLQ5_0, GGMLQ5_1, GGMLQ8_0, GGMLQ4_K, GGMLQ5_K, GGMLQ6_K}

// ggmlEncode returns x (a whole number of blocks) in ggml type t, encoded
// by package gguf (ggml's reference quantizers).
func ggmlEncode(t testing.TB, typ GGMLType, x []float32) []byte {
	t.Helper()
	elems, bytes, _ := typ.Block()
	out := make([]byte, len(x)/elems*bytes)
	var err error
	switch typ {
	case GGMLF32:
		err = weights.EncodeFloat32(out, x, weights.F32)
	case GGMLF16:
		err = weights.EncodeFloat32(out, x, weights.F16)
	case GGMLBF16:
		err = weights.EncodeFloat32(out, x, weights.BF16)
	default:
		err = gguf.Encode(gguf.Type(typ), out, x)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ggmlDecodeReference decodes src with package gguf (F32, F16 and BF16
// with package weights).
func ggmlDecodeReference(t *testing.T, typ GGMLType, dst []float32, src []byte) {
	t.Helper()
	var err error
	switch typ {
	case GGMLF32:
		err = weights.DecodeFloat32(dst, src, weights.F32)
	case GGMLF16:
		err = weights.DecodeFloat32(dst, src, weights.F16)
	case GGMLBF16:
		err = weights.DecodeFloat32(dst, src, weights.BF16)
	default:
		err = gguf.Decode(gguf.Type(typ), dst, src)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// makeGGML returns a random out×in weight of type typ: values quantized
// by ggml's reference code, with RowMap a random permutation when
// permuted.
func makeGGML(t testing.TB, rng *rand.Rand, typ GGMLType, out, in int, permuted bool) *Weight {
	t.Helper()
	x := make([]float32, out*in)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.5)
	}
	g := &GGML{Type: typ, Out: out, In: in, Data: ggmlEncode(t, typ, x)}
	if permuted {
		g.RowMap = make([]int32, out)
		for o, r := range rng.Perm(out) {
			g.RowMap[o] = int32(r)
		}
	}
	return &Weight{Out: out, In: in, DType: weights.U8, Data: g.Data, GGML: g}
}

// ggmlDense returns w's values decoded by package gguf as an F32 weight.
func ggmlDense(t *testing.T, w *Weight) *Weight {
	t.Helper()
	g := w.GGML
	v := make([]float32, g.Out*g.In)
	for o := 0; o < g.Out; o++ {
		ggmlDecodeReference(t, g.Type, v[o*g.In:(o+1)*g.In], g.Row(o))
	}
	return &Weight{Out: g.Out, In: g.In, DType: weights.F32, Data: f32Bytes(v)}
}

func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b)
}

// Every decoder equals package gguf's Decode (ggml's dequantize_row_*) bit
// for bit, on blocks from ggml's quantizers and on random bytes (any
// codes, scales and minimums, infinities and NaNs among them), through
// ggmlDecodeRow, DequantizeRow and widenRange at every block-aligned and
// unaligned start; the dot products equal Σ x·w over the decoded values
// to rounding.
func TestGGMLDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 3))
	for _, typ := range ggmlTypes {
		elems, bytes, ok := typ.Block()
		if !ok {
			t.Fatalf("%v: no block", typ)
		}
		for _, random := range []bool{false, true} {
			blocks := max(3, 768/elems)
			if elems == 1 {
				blocks = 300
			}
			n := blocks * elems
			var src []byte
			if random {
				src = make([]byte, blocks*bytes)
				for i := range src {
					src[i] = byte(rng.Uint32())
				}
			} else {
				w := makeGGML(t, rng, typ, 1, n, false)
				src = w.Data
			}
			name := fmt.Sprintf("%v/random=%v", typ, random)
			want := make([]float32, n)
			ggmlDecodeReference(t, typ, want, src)
			got := make([]float32, n+1)
			got[n] = 42
			ggmlDecodeRow[typ](got, src)
			if got[n] != 42 {
				t.Fatalf("%s: decoded past the blocks", name)
			}
			for i := range want {
				if !sameBits(got[i], want[i]) {
					t.Fatalf("%s: value %d = %v (%#x), gguf.Decode gives %v (%#x)", name, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
			g := &GGML{Type: typ, Out: 1, In: n, Data: src}
			if err := g.Validate(); err != nil {
				t.Fatal(err)
			}
			row := make([]float32, n)
			g.DequantizeRow(row, 0)
			for pc := 0; pc < n; pc += 1 + rng.IntN(2*elems) {
				part := make([]float32, min(n-pc, 1+rng.IntN(300)))
				g.widenRange(part, 0, pc)
				for j, v := range part {
					if !sameBits(v, want[pc+j]) {
						t.Fatalf("%s: widenRange(0, %d)[%d] = %v, want %v", name, pc, j, v, want[pc+j])
					}
				}
			}
			if random {
				continue // infinities and NaNs: no dot product to compare
			}
			x := randF32(rng, n)
			var ref, abs float64
			for i := range x {
				ref += float64(x[i]) * float64(want[i])
				abs += math.Abs(float64(x[i]) * float64(want[i]))
			}
			if d := ggmlDotRow[typ](x, src); math.Abs(float64(d)-ref) > linearTol*abs {
				t.Errorf("%s: dot %v, want %v", name, d, ref)
			}
		}
	}
}

// Linear with ggml weights (gemv, each micro-kernel, Linear) agrees with
// linearRef on the weight decoded to f32, at m = 1..5 and larger, Out not
// a multiple of any tile, rows of several blocks and several kcBlock
// stretches, with and without a row map and a bias. Run also with -tags
// purego.
func TestLinearGGML(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	impls := append(linearImpls(), linearImpl{"Linear", Linear})
	for _, typ := range ggmlTypes {
		elems, _, _ := typ.Block()
		shapes := []struct{ out, in int }{{1, 256}, {7, 512}, {50, 768}, {97, 256}}
		if elems < 256 {
			shapes = append(shapes, struct{ out, in int }{17, 96}, struct{ out, in int }{33, 288})
		}
		for _, sh := range shapes {
			for _, permuted := range []bool{false, true} {
				w := makeGGML(t, rng, typ, sh.out, sh.in, permuted)
				if err := w.Validate(); err != nil {
					t.Fatal(err)
				}
				dense := ggmlDense(t, w)
				for _, m := range []int{1, 2, 3, 4, 5, 9, 17} {
					x := randF32(rng, m*sh.in)
					var bias []float32
					if m%2 == 1 {
						bias = randF32(rng, sh.out)
					}
					e := expectLinear(x, m, dense, bias)
					for _, impl := range impls {
						name := fmt.Sprintf("%v/%s/%dx%d/perm=%v/m=%d", typ, impl.name, sh.out, sh.in, permuted, m)
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

// Embedding of a ggml table gives the row decoded, bit for bit; Rows views
// rows lo..hi-1, also of a permuted weight.
func TestGGMLEmbeddingAndRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2))
	for _, typ := range ggmlTypes {
		for _, permuted := range []bool{false, true} {
			w := makeGGML(t, rng, typ, 13, 512, permuted)
			dense := ggmlDense(t, w)
			want := float32View(dense.Data)
			row := make([]float32, 512)
			for o := 0; o < 13; o++ {
				Embedding(row, w, o)
				for i, v := range row {
					if !sameBits(v, want[o*512+i]) {
						t.Fatalf("%v perm=%v: row %d [%d] = %v, want %v", typ, permuted, o, i, v, want[o*512+i])
					}
				}
			}
			for _, r := range [][2]int{{0, 13}, {3, 9}, {12, 13}} {
				sub := w.GGML.Rows(r[0], r[1])
				if err := sub.Validate(); err != nil {
					t.Fatal(err)
				}
				v := sub.Dequantize()
				for i := range v {
					if !sameBits(v[i], want[r[0]*512+i]) {
						t.Fatalf("%v perm=%v: rows %v: value %d = %v, want %v", typ, permuted, r, i, v[i], want[r[0]*512+i])
					}
				}
			}
		}
	}
}

// The tables have an entry for every type, and a q4_k weight holds its
// blocks (4.5 bits a value), not values.
func TestGGMLTables(t *testing.T) {
	for _, typ := range ggmlTypes {
		if ggmlDecodeRow[typ] == nil || ggmlDotRow[typ] == nil {
			t.Errorf("%v: missing from the tables", typ)
		}
	}
	if len(ggmlBlocks) != len(ggmlTypes) {
		t.Errorf("%d block types, %d tested", len(ggmlBlocks), len(ggmlTypes))
	}
	w := makeGGML(t, rand.New(rand.NewPCG(1, 1)), GGMLQ4_K, 4, 512, false)
	if len(w.GGML.Data) != 4*2*144 {
		t.Errorf("q4_k 4×512 holds %d bytes, want %d", len(w.GGML.Data), 4*2*144)
	}
	if _, _, ok := GGMLType(3).Block(); ok || GGMLType(3).String() != "GGMLType(3)" || GGMLQ6_K.String() != "Q6_K" {
		t.Error("type 3 (ggml's removed Q4_2) is known")
	}
}

// Validate refuses ggml data that does not fit the shape.
func TestValidateGGML(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for name, mod := range map[string]func(w *Weight){
		"short data":      func(w *Weight) { w.GGML.Data = w.GGML.Data[:len(w.GGML.Data)-1] },
		"partial block":   func(w *Weight) { w.In, w.GGML.In = 300, 300 },
		"type":            func(w *Weight) { w.GGML.Type = 3 },
		"in-major":        func(w *Weight) { w.InMajor = true },
		"no ggml":         func(w *Weight) { w.GGML = nil },
		"shape":           func(w *Weight) { w.Out++ },
		"dtype":           func(w *Weight) { w.DType = weights.F32 },
		"scales":          func(w *Weight) { w.Scales = []float32{1} },
		"row map length":  func(w *Weight) { w.GGML.RowMap = []int32{0, 1} },
		"row map range":   func(w *Weight) { w.GGML.RowMap = []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 10} },
		"row map partial": func(w *Weight) { w.GGML.RowMap = make([]int32, 10); w.GGML.Data = w.GGML.Data[1:] },
	} {
		w := makeGGML(t, rng, GGMLQ4_K, 10, 512, false)
		if err := w.Validate(); err != nil {
			t.Fatal(err)
		}
		mod(w)
		if err := w.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A row map may refer to fewer or more stored rows than Out.
	w := makeGGML(t, rng, GGMLQ8_0, 10, 64, false)
	w.Out, w.GGML.Out, w.GGML.RowMap = 3, 3, []int32{9, 0, 9}
	if err := w.Validate(); err != nil {
		t.Error(err)
	}
}

// BenchmarkLinearGGML: Linear with 2048×2048 ggml weights of each k-quant
// and Q8_0 (and F32 for comparison), one row of x (the ggmlDotRow path)
// and 64 (the packer), one thread.
func BenchmarkLinearGGML(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, typ := range []GGMLType{GGMLF32, GGMLQ8_0, GGMLQ4_K, GGMLQ5_K, GGMLQ6_K} {
		w := makeGGML(b, rng, typ, 2048, 2048, false)
		for _, m := range []int{1, 64} {
			x := randF32(rng, m*2048)
			y := make([]float32, m*2048)
			b.Run(fmt.Sprintf("%v/m=%d", typ, m), func(b *testing.B) {
				for b.Loop() {
					Linear(y, x, m, w, nil, 1)
				}
				b.ReportMetric(float64(2*m*2048*2048)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
