package weights

import (
	"errors"
	"reflect"
	"testing"
)

func TestDTypes(t *testing.T) {
	want := map[string]int{"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4,
		"F32": 4, "F64": 8, "I64": 8, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
	if len(DTypes()) != len(want) {
		t.Fatalf("%d dtypes, want %d", len(DTypes()), len(want))
	}
	for name, size := range want {
		d, err := ParseDType(name)
		if err != nil {
			t.Fatal(err)
		}
		if d.String() != name || d.Size() != size || !d.Valid() {
			t.Errorf("%s: %v size %d", name, d, d.Size())
		}
		b, _ := d.MarshalText()
		var back DType
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Errorf("%s: text round trip gave %v %v", name, back, err)
		}
	}
	if _, err := ParseDType("F4"); err == nil {
		t.Error("unknown dtype accepted")
	}
}

func TestSizesOverflow(t *testing.T) {
	if _, err := NumElements([]int64{1 << 32, 1 << 32}); !errors.Is(err, ErrShape) {
		t.Errorf("2^64 elements: %v", err)
	}
	if _, err := ByteSize(F64, []int64{1 << 31, 1 << 31}); !errors.Is(err, ErrShape) {
		t.Errorf("2^62 F64 elements: %v", err)
	}
	if _, err := NumElements([]int64{3, -1}); !errors.Is(err, ErrShape) {
		t.Errorf("negative dim: %v", err)
	}
	if n, err := NumElements(nil); n != 1 || err != nil {
		t.Errorf("0-dim: %d %v", n, err)
	}
	if n, err := NumElements([]int64{4, 0, 7}); n != 0 || err != nil {
		t.Errorf("empty: %d %v", n, err)
	}
}

func TestGraph(t *testing.T) {
	g := NewGraph()
	a, _ := FromFloat32("a", F32, []int64{2, 2}, []float32{1, 2, 3, 4})
	b, _ := NewTensor("b", F16, []int64{3}, make([]byte, 6))
	c, _ := NewTensor("c", F16, []int64{3}, make([]byte, 6))
	a.Storage, c.Storage = "s0", "s0"
	for _, x := range []*Tensor{a, b, c} {
		if err := g.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Add(b); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if g.NumParams() != 10 || g.NumBytes() != 28 {
		t.Fatalf("params %d bytes %d", g.NumParams(), g.NumBytes())
	}
	if got := g.TiedGroups(); !reflect.DeepEqual(got, [][]string{{"a", "c"}}) {
		t.Fatalf("tied: %v", got)
	}
	if !g.Remove("b") || g.Remove("b") {
		t.Fatal("remove")
	}
	if x, ok := g.Tensor("c"); !ok || x != c || !reflect.DeepEqual(g.Names(), []string{"a", "c"}) {
		t.Fatalf("after remove: %v", g.Names())
	}
	vals, err := a.Float32s()
	if err != nil || !reflect.DeepEqual(vals, []float32{1, 2, 3, 4}) {
		t.Fatalf("Float32s: %v %v", vals, err)
	}
	bad := &Tensor{Name: "bad", DType: F32, Shape: []int64{3}, Data: Memory(make([]byte, 8))}
	if _, err := bad.Bytes(); err == nil {
		t.Fatal("short data accepted")
	}
	g.AddGlobal("x.y")
	g.AddGlobal("a.b")
	g.AddGlobal("x.y")
	if !reflect.DeepEqual(g.Globals, []string{"a.b", "x.y"}) {
		t.Fatalf("globals %v", g.Globals)
	}
}
