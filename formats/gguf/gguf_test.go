package gguf

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

func mem(b []byte) weights.Source { return weights.Memory(b) }

// TestWriteReadBack writes every kind of metadata value and tensors of each
// type, and checks that the test reader finds exactly that: values, order,
// dimensions, types, data, aligned offsets and zero padding.
func TestWriteReadBack(t *testing.T) {
	md := []KV{
		{"general.architecture", "llama"},
		{"a.u8", uint8(200)}, {"a.i8", int8(-5)}, {"a.u16", uint16(65000)}, {"a.i16", int16(-300)},
		{"a.u32", uint32(1 << 31)}, {"a.i32", int32(-1 << 30)}, {"a.u64", uint64(1 << 40)}, {"a.i64", int64(-1 << 40)},
		{"a.f32", float32(1.5)}, {"a.f64", math.Pi}, {"a.t", true}, {"a.f", false}, {"a.s", "héllo"},
		{"b.strings", []string{"x", "", "ü"}}, {"b.f32s", []float32{1, -2}}, {"b.i32s", []int32{3, -4}},
		{"b.u8s", []uint8{}}, {"b.bools", []bool{true, false}},
	}
	f32 := make([]byte, 4*3*5)
	for i := range f32 {
		f32[i] = byte(i)
	}
	f16 := make([]byte, 2*7)
	q := make([]byte, 2*Q8_0BlockBytes)
	vals := make([]float32, 64)
	for i := range vals {
		vals[i] = float32(i) - 20
	}
	if err := EncodeQ8_0(q, vals); err != nil {
		t.Fatal(err)
	}
	tensors := []*Tensor{
		{Name: "a.weight", Dims: []uint64{3, 5}, Type: TypeF32, Data: mem(f32)},
		{Name: "b", Dims: []uint64{7}, Type: TypeF16, Data: mem(f16)},
		{Name: "blk.0.q", Dims: []uint64{32, 2}, Type: TypeQ8_0, Data: mem(q)},
	}
	var buf bytes.Buffer
	n, err := Write(&buf, md, tensors)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("Write reports %d bytes, wrote %d", n, buf.Len())
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, md) {
		t.Errorf("metadata read back:\n%v\nwant\n%v", f.Metadata, md)
	}
	if len(f.Tensors) != 3 || f.DataOffset%32 != 0 {
		t.Fatalf("%d tensors, data at %d", len(f.Tensors), f.DataOffset)
	}
	var prevEnd uint64
	for i, rt := range f.Tensors {
		want := tensors[i]
		wantData, _ := want.Data.Bytes()
		if rt.Name != want.Name || rt.Type != want.Type || !reflect.DeepEqual(rt.Dims, want.Dims) || !bytes.Equal(rt.Data, wantData) {
			t.Errorf("tensor %d: %+v", i, rt)
		}
		if rt.Offset%32 != 0 || rt.Offset < prevEnd {
			t.Errorf("tensor %s at offset %d (previous ends at %d)", rt.Name, rt.Offset, prevEnd)
		}
		// The bytes between tensors are zeros.
		for _, b := range buf.Bytes()[f.DataOffset+prevEnd : f.DataOffset+rt.Offset] {
			if b != 0 {
				t.Fatalf("non-zero padding before %s", rt.Name)
			}
		}
		prevEnd = rt.Offset + uint64(len(rt.Data))
	}
	if end := f.DataOffset + prevEnd; uint64(buf.Len()) != (end+31)/32*32 {
		t.Errorf("file is %d bytes, last tensor ends at %d", buf.Len(), end)
	}
	got, err := f.Tensors[2].Dequantize()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		amax := 20.0 // block 0 holds -20..11, block 1 12..43
		if i >= 32 {
			amax = 43
		}
		if math.Abs(float64(v-vals[i])) > 0.5*amax/127*1.01 {
			t.Errorf("value %d: %g, want %g", i, v, vals[i])
		}
	}

	// general.alignment changes the alignment.
	md2 := append([]KV{{"general.alignment", uint32(64)}}, md[1:3]...)
	buf.Reset()
	if _, err := Write(&buf, md2, tensors); err != nil {
		t.Fatal(err)
	}
	f, err = Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 || f.Tensors[1].Offset%64 != 0 || f.Tensors[2].Offset%64 != 0 {
		t.Errorf("alignment 64: data at %d, offsets %d %d", f.DataOffset, f.Tensors[1].Offset, f.Tensors[2].Offset)
	}
}

// TestQ8_0MatchesReference checks EncodeQ8_0 byte for byte against numpy's
// computation of ggml's reference (testdata/gen_q8_0.py): ties rounded away
// from zero, the f16 scale, all-zero blocks, outliers.
func TestQ8_0MatchesReference(t *testing.T) {
	raw, err := os.ReadFile("testdata/q8_0.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ X, Q8_0 string }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	xb, _ := base64.StdEncoding.DecodeString(doc.X)
	want, _ := base64.StdEncoding.DecodeString(doc.Q8_0)
	x := make([]float32, len(xb)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(xb[4*i:]))
	}
	if len(x) < 10*32 {
		t.Fatalf("%d values", len(x))
	}
	got := make([]byte, len(x)/32*Q8_0BlockBytes)
	if err := EncodeQ8_0(got, x); err != nil {
		t.Fatal(err)
	}
	for b := 0; b < len(got)/Q8_0BlockBytes; b++ {
		g, w := got[b*Q8_0BlockBytes:(b+1)*Q8_0BlockBytes], want[b*Q8_0BlockBytes:(b+1)*Q8_0BlockBytes]
		if !bytes.Equal(g, w) {
			t.Errorf("block %d differs:\n got %v\nwant %v", b, g, w)
		}
	}
}

func TestQ8_0Refuses(t *testing.T) {
	x := make([]float32, 32)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), 1e7} {
		x[5] = bad
		if err := EncodeQ8_0(make([]byte, Q8_0BlockBytes), x); !errors.Is(err, ErrInvalid) {
			t.Errorf("%g: %v", bad, err)
		}
	}
	if err := EncodeQ8_0(make([]byte, 34), make([]float32, 31)); !errors.Is(err, ErrInvalid) {
		t.Errorf("31 values: %v", err)
	}
}

// TestWriteRejects checks that what cannot be a valid file is refused
// before anything is written, and a source of the wrong size after.
func TestWriteRejects(t *testing.T) {
	ok := &Tensor{Name: "t", Dims: []uint64{4}, Type: TypeF32, Data: mem(make([]byte, 16))}
	cases := map[string]struct {
		md      []KV
		tensors []*Tensor
	}{
		"key with capitals":   {[]KV{{"General.x", "a"}}, nil},
		"empty key segment":   {[]KV{{"general..x", "a"}}, nil},
		"duplicate key":       {[]KV{{"a.b", "x"}, {"a.b", "y"}}, nil},
		"unsupported value":   {[]KV{{"a.b", struct{}{}}}, nil},
		"bad alignment":       {[]KV{{"general.alignment", uint32(12)}}, nil},
		"alignment not u32":   {[]KV{{"general.alignment", 64}}, nil},
		"string not UTF-8":    {[]KV{{"a.b", "\xff"}}, nil},
		"long name":           {nil, []*Tensor{{Name: strings.Repeat("x", 64), Dims: []uint64{1}, Type: TypeF32, Data: mem(make([]byte, 4))}}},
		"duplicate tensor":    {nil, []*Tensor{ok, ok}},
		"five dims":           {nil, []*Tensor{{Name: "t", Dims: []uint64{1, 1, 1, 1, 1}, Type: TypeF32, Data: mem(make([]byte, 4))}}},
		"zero dim":            {nil, []*Tensor{{Name: "t", Dims: []uint64{0}, Type: TypeF32, Data: mem(nil)}}},
		"q8_0 rows of 48":     {nil, []*Tensor{{Name: "t", Dims: []uint64{48, 2}, Type: TypeQ8_0, Data: mem(make([]byte, 102))}}},
		"unknown type":        {nil, []*Tensor{{Name: "t", Dims: []uint64{4}, Type: Type(2), Data: mem(make([]byte, 16))}}},
		"no data":             {nil, []*Tensor{{Name: "t", Dims: []uint64{4}, Type: TypeF32}}},
		"dims overflow int64": {nil, []*Tensor{{Name: "t", Dims: []uint64{1 << 62, 1 << 62}, Type: TypeF32, Data: mem(nil)}}},
	}
	for name, c := range cases {
		var buf bytes.Buffer
		if _, err := Write(&buf, c.md, c.tensors); !errors.Is(err, ErrInvalid) || buf.Len() != 0 {
			t.Errorf("%s: error %v, %d bytes written", name, err, buf.Len())
		}
	}
	short := &Tensor{Name: "t", Dims: []uint64{4}, Type: TypeF32, Data: mem(make([]byte, 12))}
	if _, err := Write(&bytes.Buffer{}, nil, []*Tensor{short}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"t"`) {
		t.Errorf("data of the wrong size: %v", err)
	}
}

// TestWriteFileAtomic checks that a failing source leaves nothing at the
// path (nor a temporary file), and that a success leaves the file.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	boom := errors.New("source failed")
	bad := &Tensor{Name: "t", Dims: []uint64{4}, Type: TypeF32, Data: weights.SourceFunc(func() ([]byte, error) { return nil, boom })}
	if err := WriteFile(p, []KV{{"general.architecture", "llama"}}, []*Tensor{bad}); !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	good := &Tensor{Name: "t", Dims: []uint64{4}, Type: TypeF32, Data: mem(make([]byte, 16))}
	if err := WriteFile(p, []KV{{"general.architecture", "llama"}}, []*Tensor{good}); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(p)
	if err != nil || len(f.Tensors) != 1 {
		t.Fatalf("%v %+v", err, f)
	}
	f.Close()
}
