package safetensors

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// torchValues is what gen_torch.py records of each tensor: the values torch
// (or numpy) held when it wrote the bytes.
type torchValues struct {
	DType   string        `json:"dtype"`
	Shape   []int64       `json:"shape"`
	F32Bits []uint32      `json:"f32bits"`
	F64Bits []uint64      `json:"f64bits"`
	Ints    []json.Number `json:"ints"`
	Codes   []byte        `json:"codes"`
}

func loadJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// checkTorchValues decodes each tensor's bytes and compares them with the
// values torch held: floats bit for bit (through weights' decoders for F16
// and BF16), integers exactly, F8 codes byte for byte.
func checkTorchValues(t *testing.T, g *weights.Graph, want map[string]torchValues) {
	t.Helper()
	if g.Len() != len(want) {
		t.Errorf("%d tensors, torch wrote %d", g.Len(), len(want))
	}
	for name, w := range want {
		tensor, ok := g.Tensor(name)
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if tensor.DType.String() != w.DType || !slices.Equal(tensor.Shape, w.Shape) {
			t.Errorf("%s: %v %v, torch wrote %s %v", name, tensor.DType, tensor.Shape, w.DType, w.Shape)
			continue
		}
		b, err := tensor.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		n := int(tensor.NumElements())
		size := tensor.DType.Size()
		got := make([]uint64, n) // raw little-endian element values
		for i := range got {
			var v uint64
			for k := size - 1; k >= 0; k-- {
				v = v<<8 | uint64(b[i*size+k])
			}
			got[i] = v
		}
		switch {
		case w.F32Bits != nil:
			if len(w.F32Bits) != n {
				t.Fatalf("%s: %d values recorded for %d elements", name, len(w.F32Bits), n)
			}
			for i, bits := range w.F32Bits {
				var f float32
				switch tensor.DType {
				case weights.F16:
					f = weights.F16ToFloat32(uint16(got[i]))
				case weights.BF16:
					f = weights.BF16ToFloat32(uint16(got[i]))
				case weights.F32:
					f = math.Float32frombits(uint32(got[i]))
				}
				if math.Float32bits(f) != bits && !(f != f && math.IsNaN(float64(math.Float32frombits(bits)))) {
					t.Errorf("%s[%d] = %v (%#x), torch holds %v (%#x)", name, i, f, math.Float32bits(f), math.Float32frombits(bits), bits)
				}
			}
		case w.F64Bits != nil:
			if !slices.Equal(got, w.F64Bits) {
				t.Errorf("%s: bits %x, torch holds %x", name, got, w.F64Bits)
			}
		case w.Ints != nil:
			if len(w.Ints) != n {
				t.Fatalf("%s: %d values recorded for %d elements", name, len(w.Ints), n)
			}
			for i, num := range w.Ints {
				var v uint64
				switch tensor.DType {
				case weights.I8, weights.I16, weights.I32, weights.I64:
					s, err := num.Int64()
					if err != nil {
						t.Fatal(err)
					}
					v = uint64(s) & (math.MaxUint64 >> (64 - 8*size))
				default:
					if err := json.Unmarshal([]byte(num), &v); err != nil {
						t.Fatal(err)
					}
				}
				if got[i] != v {
					t.Errorf("%s[%d] = %d, torch holds %s", name, i, got[i], num)
				}
			}
		case w.Codes != nil:
			if !slices.Equal(b, w.Codes) {
				t.Errorf("%s: codes %x, written %x", name, b, w.Codes)
			}
		default:
			if n != 0 {
				t.Errorf("%s: no values recorded", name)
			}
		}
	}
}

func TestTorchFileValues(t *testing.T) {
	var want map[string]torchValues
	loadJSON(t, filepath.Join("testdata", "torch_dtypes.json"), &want)
	g, err := Open(filepath.Join("testdata", "torch_dtypes.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	checkTorchValues(t, g, want)
	if g.Metadata["format"] != "pt" {
		t.Errorf("Metadata = %v", g.Metadata)
	}
	// The fixture holds every dtype.
	for _, d := range weights.DTypes() {
		found := false
		for _, tensor := range g.Tensors() {
			found = found || tensor.DType == d
		}
		if !found {
			t.Errorf("no %v tensor in the torch fixture", d)
		}
	}
}

func TestTorchShardedValues(t *testing.T) {
	var want struct {
		Order   []string               `json:"order"`
		Tensors map[string]torchValues `json:"tensors"`
	}
	loadJSON(t, filepath.Join("testdata", "torch_sharded.json"), &want)
	g, err := OpenIndex(filepath.Join("testdata", "torch_sharded", IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	checkTorchValues(t, g, want.Tensors)
}
