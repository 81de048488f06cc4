package convert

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

func mustBytes(t *testing.T, x *weights.Tensor) []byte {
	t.Helper()
	b, err := x.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRotaryMatchesTransformers checks the q/k permutation against the
// one transformers' Llama conversion script applies (testdata/gen_layout.py).
func TestRotaryMatchesTransformers(t *testing.T) {
	raw, err := os.ReadFile("testdata/layout.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			Heads, Rows, Cols int
			Meta, HF          string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Cases) != 3 {
		t.Fatal(err, len(doc.Cases))
	}
	for _, c := range doc.Cases {
		meta, _ := base64.StdEncoding.DecodeString(c.Meta)
		hf, _ := base64.StdEncoding.DecodeString(c.HF)
		m, err := weights.NewTensor("q", weights.F32, []int64{int64(c.Rows), int64(c.Cols)}, meta)
		if err != nil {
			t.Fatal(err)
		}
		toHF, err := RotaryToHF(m, c.Heads)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mustBytes(t, toHF), hf) {
			t.Errorf("heads %d: RotaryToHF differs from transformers' permute", c.Heads)
		}
		back, err := RotaryToMeta(toHF, c.Heads)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mustBytes(t, back), meta) {
			t.Errorf("heads %d: RotaryToMeta is not the inverse", c.Heads)
		}
	}
	odd, _ := weights.NewTensor("k", weights.F32, []int64{6, 1}, make([]byte, 24))
	if _, err := RotaryToHF(odd, 2); err == nil {
		t.Error("odd head size accepted")
	}
	if _, err := RotaryToHF(odd, 4); err == nil {
		t.Error("rows that do not split into heads accepted")
	}
}

func TestTransposeSplitConcat(t *testing.T) {
	vals := make([]float32, 4*6)
	for i := range vals {
		vals[i] = float32(i)
	}
	// A GPT-2 Conv1D c_attn: [in=4, 3*out=6] with q, k, v in column blocks of 2.
	w, _ := weights.FromFloat32("h.0.attn.c_attn.weight", weights.BF16, []int64{4, 6}, vals)
	lin, err := Transpose(w)
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := lin.Float32s()
	if !slices.Equal(lin.Shape, []int64{6, 4}) || lv[1] != 6 || lv[4] != 1 {
		t.Fatalf("transpose: %v %v", lin.Shape, lv)
	}
	back, _ := Transpose(lin)
	if !bytes.Equal(mustBytes(t, back), mustBytes(t, w)) {
		t.Error("transpose twice is not the identity")
	}
	parts, err := Split(w, 1, []int64{2, 2, 2}, []string{"q", "k", "v"})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := parts[1].Float32s()
	if !slices.Equal(k, []float32{2, 3, 8, 9, 14, 15, 20, 21}) || parts[1].Name != "k" {
		t.Errorf("split k = %v", k)
	}
	fused, err := Concat(parts, 1, w.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustBytes(t, fused), mustBytes(t, w)) || !slices.Equal(fused.Shape, w.Shape) {
		t.Error("concat of the split is not the original")
	}
	rows, err := Split(lin, 0, []int64{2, 4}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	joined, _ := Concat(rows, 0, "x")
	if !bytes.Equal(mustBytes(t, joined), mustBytes(t, lin)) {
		t.Error("row split and concat")
	}
	if _, err := Split(w, 1, []int64{2, 2}, []string{"a", "b"}); err == nil {
		t.Error("parts that do not add up accepted")
	}
	if _, err := Concat([]*weights.Tensor{w, lin}, 0, "bad"); err == nil {
		t.Error("mismatched shapes concatenated")
	}
}

func TestCastReportsRange(t *testing.T) {
	a, _ := weights.FromFloat32("a", weights.F32, []int64{4}, []float32{1, 70000, -1e-9, 3})
	b, _ := weights.NewTensor("ids", weights.I64, []int64{1}, make([]byte, 8))
	g := weights.NewGraph()
	g.Add(a)
	g.Add(b)
	out, rep, err := Cast(g, weights.F16, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Changed) != 1 || rep.Changed[0].Overflows != 1 || rep.Changed[0].Underflows != 1 || rep.Changed[0].MaxAbs != 70000 {
		t.Fatalf("report %+v", rep.Changed)
	}
	if len(rep.Overflowed()) != 1 {
		t.Error("Overflowed")
	}
	x, _ := out.Tensor("a")
	v, _ := x.Float32s()
	if x.DType != weights.F16 || v[0] != 1 || v[3] != 3 {
		t.Errorf("cast values %v", v)
	}
	if y, _ := out.Tensor("ids"); y.DType != weights.I64 {
		t.Error("integer tensor cast")
	}
	if _, _, err := Cast(g, weights.I8, nil); err == nil {
		t.Error("cast to an integer type accepted")
	}
	_, rep, _ = Cast(g, weights.BF16, nil)
	if rep.Changed[0].Overflows != 0 {
		t.Errorf("bf16 has the f32 range: %+v", rep.Changed[0])
	}
}

func TestDedupeShared(t *testing.T) {
	cfg, err := arch.ParseConfig([]byte(`{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","vocab_size":3,"n_embd":2,"n_layer":1,"n_head":1,"n_positions":4}`))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name, storage string, off int64, shape ...int64) *weights.Tensor {
		x, _ := weights.FromFloat32(name, weights.F32, shape, make([]float32, shape[0]*shape[1]))
		x.Storage, x.StorageOffset = storage, off
		return x
	}
	g := weights.NewGraph()
	g.Add(mk("lm_head.weight", "s0", 0, 3, 2))
	g.Add(mk("transformer.wte.weight", "s0", 0, 3, 2))
	g.Add(mk("transformer.wpe.weight", "s1", 0, 4, 2))
	g.Add(mk("part.of.wpe", "s1", 8, 2, 2)) // a view into part of s1: kept as a copy
	out, rep, err := DedupeShared(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Dropped) != 1 || rep.Dropped["lm_head.weight"] != "transformer.wte.weight" {
		t.Fatalf("dropped %v", rep.Dropped)
	}
	if out.Metadata["format"] != "pt" || out.Metadata["lm_head.weight"] != "transformer.wte.weight" {
		t.Errorf("metadata %v", out.Metadata)
	}
	if fmt.Sprint(out.Names()) != "[transformer.wte.weight transformer.wpe.weight part.of.wpe]" || len(out.TiedGroups()) != 0 {
		t.Errorf("names %v tied %v", out.Names(), out.TiedGroups())
	}
}
