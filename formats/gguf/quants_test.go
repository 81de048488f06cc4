package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

var quantTypes = map[string]Type{
	"q4_0": TypeQ4_0, "q5_0": TypeQ5_0, "q5_1": TypeQ5_1, "q8_0": TypeQ8_0,
	"q4_k": TypeQ4_K, "q5_k": TypeQ5_K, "q6_k": TypeQ6_K,
}

func readF32s(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// TestQuantsMatchGGMLReference compares Encode's blocks byte for byte, and
// Decode's values bit for bit, with testdata/gen_quants.py's port of
// ggml's reference quantizers and dequantizers, on normal values,
// outliers, all-zero rows and sub-blocks, tiny values (scales that
// underflow float16), one-sided rows and rounding ties.
func TestQuantsMatchGGMLReference(t *testing.T) {
	inputs, err := filepath.Glob("testdata/quants/*.f32")
	if err != nil {
		t.Fatal(err)
	}
	var cases int
	for _, in := range inputs {
		base := filepath.Base(in)
		name := base[:len(base)-4]
		if filepath.Ext(name) != "" {
			continue // an expected dequantization
		}
		cases++
		x := readF32s(t, in)
		for tn, typ := range quantTypes {
			t.Run(name+"/"+tn, func(t *testing.T) {
				want, err := os.ReadFile(filepath.Join("testdata/quants", name+"."+tn))
				if err != nil {
					t.Fatal(err)
				}
				size, err := ByteSize(typ, []uint64{uint64(len(x))})
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, size)
				if err := Encode(typ, got, x); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					_, bb, _ := typ.block()
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("%d bytes: first difference at byte %d (block %d, byte %d): %#x, want %#x", len(got), i, i/int(bb), i%int(bb), got[i], want[i])
						}
					}
				}
				wantY := readF32s(t, filepath.Join("testdata/quants", name+"."+tn+".f32"))
				y := make([]float32, len(x))
				if err := Decode(typ, y, want); err != nil {
					t.Fatal(err)
				}
				for i := range y {
					if math.Float32bits(y[i]) != math.Float32bits(wantY[i]) {
						t.Fatalf("value %d decodes to %g, ggml's reference to %g", i, y[i], wantY[i])
					}
				}
			})
		}
	}
	if cases < 6 {
		t.Fatalf("%d cases in testdata/quants (run testdata/gen_quants.py)", cases)
	}
}

// TestQuantsRoundTripClose checks the quantizers against the values they
// quantize: the error per value is within the type's step.
func TestQuantsRoundTripClose(t *testing.T) {
	x := readF32s(t, "testdata/quants/normal.f32")
	for tn, typ := range quantTypes {
		size, _ := ByteSize(typ, []uint64{uint64(len(x))})
		b := make([]byte, size)
		if err := Encode(typ, b, x); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := Decode(typ, y, b); err != nil {
			t.Fatal(err)
		}
		var num, den float64
		for i := range x {
			d := float64(x[i] - y[i])
			num += d * d
			den += float64(x[i]) * float64(x[i])
		}
		rel := math.Sqrt(num / den)
		limit := map[string]float64{"q4_0": 0.15, "q5_0": 0.08, "q5_1": 0.08, "q8_0": 0.01, "q4_k": 0.12, "q5_k": 0.06, "q6_k": 0.03}[tn]
		if rel > limit {
			t.Errorf("%s: relative RMS error %.4f > %.2f", tn, rel, limit)
		}
	}
}

func TestQuantsRefuseBadInput(t *testing.T) {
	x := make([]float32, 256)
	x[3] = float32(math.NaN())
	b := make([]byte, 144)
	if err := Encode(TypeQ4_K, b, x); !errors.Is(err, ErrInvalid) {
		t.Errorf("NaN: %v", err)
	}
	x[3] = 1e9 // scale beyond float16
	if err := Encode(TypeQ6_K, make([]byte, 210), x); !errors.Is(err, ErrInvalid) {
		t.Errorf("1e9: %v", err)
	}
	if err := Encode(TypeQ4_K, make([]byte, 100), x); !errors.Is(err, ErrInvalid) {
		t.Errorf("short dst: %v", err)
	}
	if err := Encode(TypeQ4_K, make([]byte, 144), x[:128]); !errors.Is(err, ErrInvalid) {
		t.Errorf("128 values: %v", err)
	}
	if err := Decode(TypeF16, make([]float32, 4), make([]byte, 8)); !errors.Is(err, ErrInvalid) {
		t.Errorf("F16: %v", err)
	}
}

// BenchmarkEncode: values per second of each quantizer on 64 rows of 4096
// normal values.
func BenchmarkEncode(b *testing.B) {
	x := readF32s(b, "testdata/quants/normal.f32")
	for len(x) < 64*4096 {
		x = append(x, x...)
	}
	x = x[:64*4096]
	for _, tn := range []string{"q8_0", "q4_0", "q4_k", "q5_k", "q6_k"} {
		typ := quantTypes[tn]
		size, _ := ByteSize(typ, []uint64{uint64(len(x))})
		dst := make([]byte, size)
		b.Run(tn, func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if err := Encode(typ, dst, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
