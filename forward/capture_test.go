package forward

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/tokenizer"
	"github.com/hubmirror/hubmirror/weights"
)

// TestRunCaptureSeesEveryLinear: a hook that replaces nothing gives
// RunBatch's outputs; it is called once per Linear product with the
// tensor's name and the rows of every sequence stacked in sequence order,
// and q/k/v (and gate/up) get the same input.
func TestRunCaptureSeesEveryLinear(t *testing.T) {
	g := openGraph(t, fixtures+"/llama-tiny-st")
	m, err := Load(g, nil, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	inputs := [][]int{{1, 5, 9, 2, 7}, {3, 3, 4}, {8, 1, 6, 6, 2, 0, 4}}
	want, err := m.RunBatch(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]float32{}
	var order []string
	got, err := m.RunCapture(context.Background(), inputs, func(name string, first int, w *kernels.Weight, x []float32, rows int) *kernels.Weight {
		if rows != 15 || len(x) != rows*w.In {
			t.Errorf("%s: %d rows, %d values, want 15 rows of %d", name, rows, len(x), w.In)
		}
		if _, ok := seen[name]; ok || first != 0 {
			t.Errorf("%s: called twice, or from row %d", name, first)
		}
		seen[name] = slices.Clone(x)
		order = append(order, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		for j, o := range want[i].Tensors {
			if !slices.Equal(o.Data, got[i].Tensors[j].Data) {
				t.Errorf("sequence %d, %s: RunCapture differs from RunBatch", i, o.Name)
			}
		}
	}
	// 2 layers × 7 projections, then the head.
	if len(order) != 15 || order[0] != "model.layers.0.self_attn.q_proj.weight" || order[14] != "lm_head.weight" {
		t.Fatalf("products %v", order)
	}
	for l := range 2 {
		p := "model.layers." + string(rune('0'+l)) + "."
		q, k, v := seen[p+"self_attn.q_proj.weight"], seen[p+"self_attn.k_proj.weight"], seen[p+"self_attn.v_proj.weight"]
		if q == nil || !slices.Equal(q, k) || !slices.Equal(q, v) {
			t.Errorf("layer %d: q/k/v inputs differ", l)
		}
		if !slices.Equal(seen[p+"mlp.gate_proj.weight"], seen[p+"mlp.up_proj.weight"]) {
			t.Errorf("layer %d: gate/up inputs differ", l)
		}
	}
	// The rows of the first product are the sequences' normalized
	// embeddings in order: the first sequence's first row is that of a
	// run of it alone.
	x0 := seen["model.layers.0.self_attn.q_proj.weight"]
	var alone []float32
	if _, err := m.RunCapture(context.Background(), inputs[:1], func(name string, first int, w *kernels.Weight, x []float32, rows int) *kernels.Weight {
		if alone == nil {
			alone = slices.Clone(x)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(alone, x0[:len(alone)]) {
		t.Error("the first sequence's rows are not first in the stack")
	}
}

// TestRunCaptureReplaces: a weight the hook returns is the one the
// product uses, and later layers see its outputs: the same outputs as the
// model whose tensor holds that weight. One of another shape is ignored.
func TestRunCaptureReplaces(t *testing.T) {
	g := openGraph(t, fixtures+"/llama-tiny-st")
	m, err := Load(g, nil, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	const target = "model.layers.0.mlp.down_proj.weight"
	src, _ := g.Tensor(target)
	vals, err := src.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		vals[i] = vals[i]*0.5 - 0.01
	}
	b := make([]byte, 4*len(vals))
	if err := weights.EncodeFloat32(b, vals, weights.F32); err != nil {
		t.Fatal(err)
	}
	edited := g.Derive()
	for _, x := range g.Tensors() {
		if x.Name == target {
			nt, err := weights.NewTensor(target, weights.F32, x.Shape, b)
			if err != nil {
				t.Fatal(err)
			}
			x = nt
		}
		if err := edited.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	em, err := Load(edited, nil, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	inputs := [][]int{{1, 5, 9, 2, 7}, {3, 3, 4, 11}}
	want, err := em.RunBatch(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.RunCapture(context.Background(), inputs, func(name string, first int, w *kernels.Weight, x []float32, rows int) *kernels.Weight {
		if name == target {
			return &kernels.Weight{Out: w.Out, In: w.In, DType: weights.F32, Data: b}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := m.RunBatch(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	// A weight of another shape is not used.
	same, err := m.RunCapture(context.Background(), inputs, func(name string, first int, w *kernels.Weight, x []float32, rows int) *kernels.Weight {
		return &kernels.Weight{Out: 1, In: 1, DType: weights.F32, Data: make([]byte, 4)}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		for j, o := range want[i].Tensors {
			if !slices.Equal(orig[i].Tensors[j].Data, same[i].Tensors[j].Data) {
				t.Errorf("sequence %d, %s: a 1×1 replacement was used", i, o.Name)
			}
			if !slices.Equal(o.Data, got[i].Tensors[j].Data) {
				t.Errorf("sequence %d, %s: differs from the edited model", i, o.Name)
			}
			if slices.Equal(o.Data, orig[i].Tensors[j].Data) {
				t.Errorf("sequence %d, %s: the edit changed nothing", i, o.Name)
			}
		}
	}
}

// TestTextInputs: calibration text is cut into windows of the model's
// positions, each with the tokenizer's leading <s>, within the budget;
// a tokenizer whose ids the model cannot take is an input error.
func TestTextInputs(t *testing.T) {
	g := openGraph(t, "../testdata/models/llama-gptq-st")
	m, err := Load(g, nil, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir("../testdata/models/llama-gptq-st")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("abcdefghij", 20) // 200 bytes: 200 ids
	got, err := m.TextInputs(tok, []Text{{Name: "t", Text: text}}, 150)
	if err != nil {
		t.Fatal(err)
	}
	// 150 ids in windows of <s> + 63: 63, 63, 24.
	if len(got) != 3 || len(got[0]) != 64 || len(got[2]) != 25 || got[0][0] != 1 || got[1][0] != 1 {
		t.Fatalf("windows %d: %v", len(got), got)
	}
	if got[0][1] != 3+'a' {
		t.Errorf("first text id %d, want %d", got[0][1], 3+'a')
	}
	tiny := openGraph(t, fixtures+"/modernbert-model-st") // vocabulary 104: 'z' is 125
	tm, err := Load(tiny, nil, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tm.TextInputs(tok, []Text{{Name: "t", Text: "zzz"}}, 100); err == nil || !strings.Contains(err.Error(), "outside the model's vocabulary") {
		t.Errorf("ids beyond the vocabulary: %v", err)
	}
}

// Phi-3's q/k/v and gate/up are row slices of its fused qkv_proj and
// gate_up_proj: the hook gets the fused tensor's name and each slice's
// first row.
func TestRunCaptureRowSlices(t *testing.T) {
	g := openGraph(t, fixtures+"/phi3-st")
	m, err := Load(g, nil, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if _, err := m.RunCapture(context.Background(), [][]int{{1, 2, 3}}, func(name string, first int, w *kernels.Weight, x []float32, rows int) *kernels.Weight {
		if strings.HasPrefix(name, "model.layers.0.") {
			got = append(got, fmt.Sprintf("%s %d %d", strings.TrimPrefix(name, "model.layers.0."), first, w.Out))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	gu, _ := g.Tensor("model.layers.0.mlp.gate_up_proj.weight")
	q, kv, inter := 64, 32, int(gu.Shape[0])/2 // 4 heads and 2 KV heads of 16
	want := []string{
		fmt.Sprintf("self_attn.qkv_proj.weight 0 %d", q), fmt.Sprintf("self_attn.qkv_proj.weight %d %d", q, kv),
		fmt.Sprintf("self_attn.qkv_proj.weight %d %d", q+kv, kv), fmt.Sprintf("self_attn.o_proj.weight 0 %d", m.Info().HiddenSize),
		fmt.Sprintf("mlp.gate_up_proj.weight 0 %d", inter), fmt.Sprintf("mlp.gate_up_proj.weight %d %d", inter, inter),
		fmt.Sprintf("mlp.down_proj.weight 0 %d", m.Info().HiddenSize),
	}
	if !slices.Equal(got, want) {
		t.Errorf("products %q, want %q", got, want)
	}
}
