package quantize

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// lowbitRef is testdata/lowbit.json, written by gen_lowbit.py from
// compressed-tensors' algorithms re-implemented in PyTorch.
type lowbitRef struct {
	W4A16 []struct {
		DType   string  `json:"dtype"`
		Out     int     `json:"out"`
		In      int     `json:"in"`
		Group   int     `json:"group"`
		Asym    bool    `json:"asym"`
		Weight  string  `json:"weight"`
		Packed  string  `json:"packed"`
		PShape  []int64 `json:"packed_shape"`
		Scale   string  `json:"scale"`
		SShape  []int64 `json:"scale_shape"`
		Zero    string  `json:"zero_point"`
		ZShape  []int64 `json:"zero_point_shape"`
		Dequant string  `json:"dequantized"`
	} `json:"w4a16"`
	FP8 []struct {
		DType  string `json:"dtype"`
		Out    int    `json:"out"`
		In     int    `json:"in"`
		Weight string `json:"weight"`
		Codes  string `json:"codes"`
		Scale  string `json:"scale"`
	} `json:"fp8"`
	E4M3F16  e4m3Sweep `json:"e4m3_f16"`
	E4M3BF16 e4m3Sweep `json:"e4m3_bf16"`
}

type e4m3Sweep struct {
	SHA256 string   `json:"sha256"`
	Sample [][2]int `json:"sample"`
}

func readLowbit(t *testing.T) *lowbitRef {
	t.Helper()
	raw, err := os.ReadFile("testdata/lowbit.json")
	if err != nil {
		t.Fatal(err)
	}
	var r lowbitRef
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.W4A16) == 0 || len(r.FP8) == 0 {
		t.Fatal("empty reference")
	}
	return &r
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Our w4a16 tensors equal compressed-tensors' byte for byte (packed codes,
// scales, zero points packed down the outputs, weight_shape) on rows whose
// length is not a multiple of 8, groups that do not divide the row, per
// channel, asymmetric with output counts not a multiple of 8, in each
// dtype; and our reader (kernels.Int4) dequantizes their packed tensors to
// their dequantized values bit for bit.
func TestW4A16MatchesCompressedTensors(t *testing.T) {
	ref := readLowbit(t)
	for _, c := range ref.W4A16 {
		name := fmt.Sprintf("%s/%dx%d/g%d/asym=%v", c.DType, c.Out, c.In, c.Group, c.Asym)
		d, err := weights.ParseDType(c.DType)
		if err != nil {
			t.Fatal(err)
		}
		src, err := weights.NewTensor("m.weight", d, []int64{int64(c.Out), int64(c.In)}, unb64(t, c.Weight))
		if err != nil {
			t.Fatal(err)
		}
		ts, err := int4Tensors(src, nil, c.Group, c.Asym, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := map[string]*weights.Tensor{}
		for _, x := range ts {
			got[x.Name] = x
		}
		check := func(tname string, want []byte, shape []int64, dt weights.DType) {
			x := got[tname]
			if x == nil {
				t.Fatalf("%s: no %s", name, tname)
			}
			b, err := x.Bytes()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if x.DType != dt || fmt.Sprint(x.Shape) != fmt.Sprint(shape) || !bytes.Equal(b, want) {
				t.Fatalf("%s: %s is %v %v, want %v %v; bytes equal %v", name, tname, x.DType, x.Shape, dt, shape, bytes.Equal(b, want))
			}
		}
		check("m.weight_packed", unb64(t, c.Packed), c.PShape, weights.I32)
		check("m.weight_scale", unb64(t, c.Scale), c.SShape, d)
		shape := make([]byte, 16)
		binary.LittleEndian.PutUint64(shape, uint64(c.Out))
		binary.LittleEndian.PutUint64(shape[8:], uint64(c.In))
		check("m.weight_shape", shape, []int64{2}, weights.I64)
		if c.Asym {
			check("m.weight_zero_point", unb64(t, c.Zero), c.ZShape, weights.I32)
		} else if got["m.weight_zero_point"] != nil {
			t.Fatalf("%s: a zero point for a symmetric scheme", name)
		}

		scales := make([]float32, c.Out*int(c.SShape[1]))
		if err := weights.DecodeFloat32(scales, unb64(t, c.Scale), d); err != nil {
			t.Fatal(err)
		}
		w := &kernels.Int4{Out: c.Out, In: c.In, GroupSize: c.Group, Packed: unb64(t, c.Packed), Scales: scales}
		if c.Asym {
			w.Zeros = unb64(t, c.Zero)
		}
		if err := w.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := f32s(t, unb64(t, c.Dequant))
		for k, v := range w.Dequantize() {
			if math.Float32bits(v) != math.Float32bits(want[k]) {
				t.Fatalf("%s: dequantized[%d] = %g, want %g", name, k, v, want[k])
			}
		}
		// A pack with the two nibbles of each byte swapped is caught: the
		// same reader gives other values.
		swapped := bytes.Clone(w.Packed)
		for i, b := range swapped {
			swapped[i] = b<<4 | b>>4
		}
		w.Packed = swapped
		same := true
		for k, v := range w.Dequantize() {
			same = same && v == want[k]
		}
		if same {
			t.Errorf("%s: swapped nibbles dequantize to the same values", name)
		}
	}
}

// Our fp8 weights and scales equal the reference's (their calculate_qparams
// and _quantize with a hand E4M3 encoder from the spec), and EncodeE4M3
// agrees with that encoder on every f16 and every bf16 value.
func TestFP8MatchesReference(t *testing.T) {
	ref := readLowbit(t)
	for _, c := range ref.FP8 {
		name := fmt.Sprintf("%s/%dx%d", c.DType, c.Out, c.In)
		d, err := weights.ParseDType(c.DType)
		if err != nil {
			t.Fatal(err)
		}
		src, err := weights.NewTensor("m.weight", d, []int64{int64(c.Out), int64(c.In)}, unb64(t, c.Weight))
		if err != nil {
			t.Fatal(err)
		}
		ts, err := fp8Tensors(src, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ts {
			b, err := x.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"m.weight": c.Codes, "m.weight_scale": c.Scale}[x.Name]
			if !bytes.Equal(b, unb64(t, want)) {
				t.Errorf("%s: %s differs from the reference", name, x.Name)
			}
		}
	}
	for _, sw := range []struct {
		d   weights.DType
		ref e4m3Sweep
	}{{weights.F16, ref.E4M3F16}, {weights.BF16, ref.E4M3BF16}} {
		codes := make([]byte, 1<<16)
		for i := range codes {
			var v float32
			if sw.d == weights.F16 {
				v = weights.F16ToFloat32(uint16(i))
			} else {
				v = weights.BF16ToFloat32(uint16(i))
			}
			codes[i] = EncodeE4M3(v)
		}
		for _, s := range sw.ref.Sample {
			if codes[s[0]] != byte(s[1]) {
				t.Fatalf("%v bits %#04x: code %#02x, want %#02x", sw.d, s[0], codes[s[0]], s[1])
			}
		}
		sum := sha256.Sum256(codes)
		if hex.EncodeToString(sum[:]) != sw.ref.SHA256 {
			t.Errorf("%v: codes of all 65536 values differ from the reference", sw.d)
		}
	}
}
