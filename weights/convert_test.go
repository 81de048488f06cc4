package weights

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestConversionsMatchTorch checks float32 -> f16/bf16 rounding and the exact
// widening back against the bits PyTorch produced (testdata/gen_conversions.py).
func TestConversionsMatchTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/conversions.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rows []struct{ F32, F16, BF16 uint32 }
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Rows) < 100 {
		t.Fatalf("only %d rows", len(doc.Rows))
	}
	for _, r := range doc.Rows {
		f := math.Float32frombits(r.F32)
		if got := Float32ToF16(f); uint32(got) != r.F16 {
			t.Errorf("f16(%g): got %#04x, torch %#04x", f, got, r.F16)
		}
		if got := Float32ToBF16(f); uint32(got) != r.BF16 {
			t.Errorf("bf16(%g): got %#04x, torch %#04x", f, got, r.BF16)
		}
		// Widening is exact: re-narrowing gives the same bits.
		if back := Float32ToF16(F16ToFloat32(uint16(r.F16))); uint32(back) != r.F16 {
			t.Errorf("f16 %#04x does not survive a round trip: %#04x", r.F16, back)
		}
		if back := Float32ToBF16(BF16ToFloat32(uint16(r.BF16))); uint32(back) != r.BF16 {
			t.Errorf("bf16 %#04x does not survive a round trip: %#04x", r.BF16, back)
		}
	}
}

func TestBF16NaN(t *testing.T) {
	nan := float32(math.NaN())
	if v := BF16ToFloat32(Float32ToBF16(nan)); v == v {
		t.Fatalf("NaN became %g", v)
	}
	// A NaN whose payload sits only in the low bits must not round to Inf.
	low := math.Float32frombits(0x7f800001)
	if v := BF16ToFloat32(Float32ToBF16(low)); v == v {
		t.Fatalf("low-payload NaN became %g", v)
	}
}

// The float8 formats against values from the OCP 8-bit floating point
// specification.
func TestF8KnownValues(t *testing.T) {
	for _, c := range []struct {
		code uint8
		e4m3 float32
		e5m2 float32
	}{
		{0x00, 0, 0},
		{0x01, 1.0 / 512, 1.0 / 65536},
		{0x38, 1, 0.5},
		{0x3c, 1.5, 1},
		{0x7e, 448, float32(math.NaN())},
		{0x7b, 352, 57344},
		{0x7c, 384, float32(math.Inf(1))},
		{0xb8, -1, -0.5},
		{0xfc, -384, float32(math.Inf(-1))},
	} {
		if got := F8E4M3ToFloat32(c.code); got != c.e4m3 {
			t.Errorf("e4m3 %#02x = %g, want %g", c.code, got, c.e4m3)
		}
		got := F8E5M2ToFloat32(c.code)
		if !(got == c.e5m2 || (got != got && c.e5m2 != c.e5m2)) {
			t.Errorf("e5m2 %#02x = %g, want %g", c.code, got, c.e5m2)
		}
	}
	if v := F8E4M3ToFloat32(0x7f); v == v {
		t.Errorf("e4m3 0x7f should be NaN, got %g", v)
	}
}

func TestF8RoundTripAndRounding(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, f := range []struct {
			dec  func(uint8) float32
			enc  func(float32) uint8
			name string
		}{{F8E4M3ToFloat32, Float32ToF8E4M3, "e4m3"}, {F8E5M2ToFloat32, Float32ToF8E5M2, "e5m2"}} {
			v := f.dec(uint8(c))
			if v != v {
				if w := f.dec(f.enc(v)); w == w {
					t.Errorf("%s: NaN re-encoded as %g", f.name, w)
				}
				continue
			}
			if back := f.enc(v); f.dec(back) != v {
				t.Errorf("%s: code %#02x (%g) re-encoded as %#02x (%g)", f.name, c, v, back, f.dec(back))
			}
		}
	}
	// Ties go to the even code: 1 + 1/16 lies halfway between 1 (0x38) and
	// 1.125 (0x39) in e4m3.
	if got := Float32ToF8E4M3(1 + 1.0/16); got != 0x38 {
		t.Errorf("tie rounded to %#02x", got)
	}
	if got := Float32ToF8E4M3(1 + 3.0/16); got != 0x3a {
		t.Errorf("tie 1.1875 rounded to %#02x, want 0x3a", got)
	}
	if got := Float32ToF8E4M3(1000); F8E4M3ToFloat32(got) == F8E4M3ToFloat32(got) {
		t.Errorf("e4m3 overflow should give NaN, got %#02x", got)
	}
	if got := Float32ToF8E5M2(1e6); !math.IsInf(float64(F8E5M2ToFloat32(got)), 1) {
		t.Errorf("e5m2 overflow should give +Inf, got %#02x", got)
	}
	if got := Float32ToF8E4M3(460); got != 0x7e {
		t.Errorf("e4m3 460 (within half an ulp of 448) = %#02x, want 0x7e", got)
	}
}

func TestConvertAllPairs(t *testing.T) {
	vals := []float32{0, 1, -2.5, 0.125, 3, -0.75}
	for _, from := range []DType{F32, F16, BF16, F64, F8E4M3, F8E5M2} {
		src := make([]byte, len(vals)*from.Size())
		if err := EncodeFloat32(src, vals, from); err != nil {
			t.Fatal(err)
		}
		for _, to := range []DType{F32, F16, BF16, F64, F8E4M3, F8E5M2} {
			dst, err := Convert(src, from, to)
			if err != nil {
				t.Fatalf("%v->%v: %v", from, to, err)
			}
			got := make([]float32, len(vals))
			if err := DecodeFloat32(got, dst, to); err != nil {
				t.Fatal(err)
			}
			for i := range vals {
				if got[i] != vals[i] { // every value above is exact in every format
					t.Errorf("%v->%v: [%d] = %g, want %g", from, to, i, got[i], vals[i])
				}
			}
		}
	}
	if _, err := Convert([]byte{1, 2, 3}, F16, F32); err == nil {
		t.Error("odd byte count accepted")
	}
	if _, err := Convert([]byte{1, 2}, F16, I32); err == nil {
		t.Error("conversion to an integer type accepted")
	}
}

func TestDecodeIntegers(t *testing.T) {
	src := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0, 0, 0}
	got := make([]float32, 2)
	if err := DecodeFloat32(got, src, I64); err != nil || got[0] != -1 || got[1] != 2 {
		t.Fatalf("I64: %v %v", got, err)
	}
	if err := DecodeFloat32(got, src[:2], I8); err != nil || got[0] != -1 {
		t.Fatalf("I8: %v %v", got, err)
	}
	if err := DecodeFloat32(got, src[:3], I8); err == nil {
		t.Fatal("length mismatch accepted")
	}
}
