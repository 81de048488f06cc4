package quantize

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// widenGraph returns g with every dimension equal to the hidden size,
// the intermediate size or the k and v rows of cfg changed to hidden,
// inter and their rows at that hidden size, and random weights (norms
// near 1): a model whose matrices have rows of a multiple of 256, which
// the k-quants need.
func widenGraph(t *testing.T, g *weights.Graph, hidden, inter int) *weights.Graph {
	t.Helper()
	var c struct {
		Hidden  int `json:"hidden_size"`
		Inter   int `json:"intermediate_size"`
		Heads   int `json:"num_attention_heads"`
		KVHeads int `json:"num_key_value_heads"`
	}
	if err := json.Unmarshal(g.Config, &c); err != nil {
		t.Fatal(err)
	}
	oldKV, newKV := c.KVHeads*c.Hidden/c.Heads, c.KVHeads*hidden/c.Heads
	rng := rand.New(rand.NewPCG(16, 3))
	out := g.Derive()
	for _, x := range g.Tensors() {
		shape := slices.Clone(x.Shape)
		for i, d := range shape {
			switch int(d) {
			case c.Hidden:
				shape[i] = int64(hidden)
			case c.Inter:
				shape[i] = int64(inter)
			case oldKV:
				shape[i] = int64(newKV)
			}
		}
		n, _ := weights.NumElements(shape)
		v := make([]float32, n)
		for i := range v {
			if len(shape) == 1 {
				v[i] = 1 + float32(rng.NormFloat64()*0.1)
			} else {
				v[i] = float32(rng.NormFloat64() / math.Sqrt(float64(shape[len(shape)-1])))
			}
		}
		y, err := weights.FromFloat32(x.Name, weights.F32, shape, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Add(y); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(g.Config, &m); err != nil {
		t.Fatal(err)
	}
	m["hidden_size"], m["intermediate_size"] = hidden, inter
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out.Config = raw
	return out
}

// decodedGraph returns g's tensors with data sources that only decode to
// f32 (no GGML method): the forward pass then loads f32 copies, as it did
// before it read ggml blocks.
func decodedGraph(g *weights.Graph) *weights.Graph {
	out := g.Derive()
	for _, x := range g.Tensors() {
		y := *x
		y.Data = weights.SourceFunc(x.Data.Bytes)
		_ = out.Add(&y)
	}
	return out
}

// TestReadGGUFBlocks: the forward pass on a GGUF file, its matrices in
// their ggml blocks, gives the logits of the forward pass on the same
// file's values decoded to f32 within 1e-5 of their largest magnitude,
// for every family at the fixtures' sizes (Q8_0, Q5_0, Q5_1 and F16
// blocks: their rows are too short for the k-quants) and for models of
// hidden size 256 (Q4_K, Q5_K, Q6_K, Q4_0, Q8_0, BF16), at sequence
// lengths that take the gemv path and the packed one. The model's
// matrices are blocks (Quantization "gguf", U8), not f32 copies.
func TestReadGGUFBlocks(t *testing.T) {
	type run struct {
		c     ggufReadCase
		wide  bool
		types []string
	}
	var runs []run
	for i, c := range ggufReadCases {
		types := []string{"q8_0"}
		if i%2 == 0 {
			types = append(types, "q5_k_m", "f16") // Q5_0 or Q5_1 with F16 fallbacks
		}
		runs = append(runs, run{c, false, types})
	}
	runs = append(runs, run{ggufReadCases[0], true, []string{"q4_k_m", "q6_k", "q4_0", "bf16"}}, // llama: permuted rows
		run{ggufReadCases[2], true, []string{"q5_k_m"}}, // qwen2 with biases
		run{ggufReadCase{fixture: "mixtral-st", layers: []int{0}, config: map[string]any{"sliding_window": nil, "num_hidden_layers": 1}},
			true, []string{"q4_k_m"}}) // mixtral: experts
	for _, r := range runs {
		g, cfg := ggufSource(t, r.c)
		if r.wide {
			inter := 512
			if r.c.layers != nil {
				inter = 256 // experts
			}
			g = widenGraph(t, g, 256, inter)
			var err error
			if cfg, err = arch.ParseConfig(g.Config); err != nil {
				t.Fatal(err)
			}
		}
		for _, typ := range r.types {
			name := fmt.Sprintf("%s/wide=%v/%s", r.c.fixture, r.wide, typ)
			cg, err := formats.Open(writeGGUFDir(t, g, cfg, typ))
			if err != nil {
				t.Fatal(err)
			}
			blocks, decoded := loadModel(t, cg), loadModel(t, decodedGraph(cg))
			quantized := typ != "f16" && typ != "bf16"
			if info := blocks.Info(); quantized && (info.Quantization != "gguf" || info.WeightDType != weights.U8) {
				t.Errorf("%s: the model's weights are %v (quantization %q), want ggml blocks", name, info.WeightDType, info.Quantization)
			}
			for _, ids := range [][]int{{1, 5, 2}, {1, 5, 2, 7, 3, 9, 4, 6, 8}} {
				a, err := decoded.Run(context.Background(), ids)
				if err != nil {
					t.Fatal(err)
				}
				b, err := blocks.Run(context.Background(), ids)
				if err != nil {
					t.Fatal(err)
				}
				la, _ := a.Get("logits")
				lb, _ := b.Get("logits")
				var worst, scale float64
				for i := range la.Data {
					worst = math.Max(worst, math.Abs(float64(la.Data[i]-lb.Data[i])))
					scale = math.Max(scale, math.Abs(float64(la.Data[i])))
				}
				if worst > 1e-5*scale {
					t.Errorf("%s, %d tokens: logits differ by up to %g (largest %g)", name, len(ids), worst, scale)
				}
			}
			cg.Close()
		}
	}
}

// The GGML of a Q4_K matrix (a wide llama's q_proj in Q4_K_M) views the
// mapped file's blocks, 144 bytes per 256 values, with the q rows' order
// as a row map that inverts the permutation the writer applied; a vector
// has no blocks.
func TestReadGGUFMatrixIsBlocks(t *testing.T) {
	g, _ := ggufSource(t, ggufReadCases[0])
	g = widenGraph(t, g, 256, 512)
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := formats.Open(writeGGUFDir(t, g, cfg, "q4_k_m"))
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	q, _ := cg.Tensor("model.layers.0.self_attn.q_proj.weight")
	d, ok := q.Data.(*ggufData)
	if !ok {
		t.Fatalf("q_proj data are %T", q.Data)
	}
	w, err := d.GGML()
	if err != nil {
		t.Fatal(err)
	}
	if w.Type != kernels.GGMLQ4_K || w.Out != 256 || w.In != 256 || len(w.Data) != 256*144 {
		t.Fatalf("q_proj is %v %d×%d in %d bytes, want Q4_K 256×256 in %d", w.Type, w.Out, w.In, len(w.Data), 256*144)
	}
	if unsafe.SliceData(w.Data) != unsafe.SliceData(d.rt.Data) {
		t.Error("q_proj's blocks are a copy, not a view of the file")
	}
	// Row o of the weight decodes to row o of the f32 values.
	all, err := q.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if len(w.RowMap) != 256 {
		t.Fatalf("row map of %d rows", len(w.RowMap))
	}
	row := make([]float32, 256)
	for o := 0; o < 256; o++ {
		w.DequantizeRow(row, o)
		if !slices.Equal(row, all[o*256:(o+1)*256]) {
			t.Fatalf("row %d of the blocks differs from the decoded values", o)
		}
	}
	n, _ := cg.Tensor("model.layers.0.input_layernorm.weight")
	if _, err := n.Data.(*ggufData).GGML(); err == nil {
		t.Error("a norm gave ggml blocks")
	}
	var types []gguf.Type
	for _, x := range cg.Tensors() {
		if d, ok := x.Data.(*ggufData); ok && !slices.Contains(types, d.rt.Type) {
			types = append(types, d.rt.Type)
		}
	}
	if !slices.Contains(types, gguf.TypeQ4_K) || !slices.Contains(types, gguf.TypeQ6_K) {
		t.Errorf("the wide Q4_K_M file has types %v, want Q4_K and Q6_K", types)
	}
}
