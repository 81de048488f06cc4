package prune

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

func cfgOf(t *testing.T, raw string) *arch.Config {
	t.Helper()
	c, err := arch.ParseConfig([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rnd makes a tensor of distinct random values (some repeated to create
// ties when ties is set).
func rnd(t *testing.T, r *rand.Rand, name string, d weights.DType, shape ...int64) *weights.Tensor {
	t.Helper()
	n, _ := weights.NumElements(shape)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	x, err := weights.FromFloat32(name, d, shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func newGraph(t *testing.T, cfg string, ts ...*weights.Tensor) *weights.Graph {
	t.Helper()
	g := weights.NewGraph()
	for _, x := range ts {
		if err := g.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	g.Config = []byte(cfg)
	return g
}

func floats(t *testing.T, g *weights.Graph, name string) []float32 {
	t.Helper()
	x, ok := g.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	v, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const llamaCfg = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":10,"hidden_size":16,"intermediate_size":24,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2}`

func llamaGraph(t *testing.T, d weights.DType) *weights.Graph {
	r := rand.New(rand.NewPCG(1, 2))
	var ts []*weights.Tensor
	ts = append(ts, rnd(t, r, "model.embed_tokens.weight", d, 10, 16))
	for l := 0; l < 2; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			rnd(t, r, p+"input_layernorm.weight", d, 16),
			rnd(t, r, p+"self_attn.q_proj.weight", d, 16, 16),
			rnd(t, r, p+"self_attn.k_proj.weight", d, 8, 16),
			rnd(t, r, p+"self_attn.v_proj.weight", d, 8, 16),
			rnd(t, r, p+"self_attn.o_proj.weight", d, 16, 16),
			rnd(t, r, p+"mlp.gate_proj.weight", d, 24, 16),
			rnd(t, r, p+"mlp.up_proj.weight", d, 24, 16),
			rnd(t, r, p+"mlp.down_proj.weight", d, 16, 24),
		)
	}
	ts = append(ts, rnd(t, r, "lm_head.weight", d, 10, 16))
	return newGraph(t, llamaCfg, ts...)
}

func TestMagnitudePerTensor(t *testing.T) {
	for _, d := range []weights.DType{weights.F32, weights.BF16} {
		g := llamaGraph(t, d)
		cfg := cfgOf(t, llamaCfg)
		out, rep, err := Magnitude(g, cfg, 0.5, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Tensors) != 14 {
			t.Fatalf("%d tensors pruned, want the 14 Linear weights", len(rep.Tensors))
		}
		for _, tr := range rep.Tensors {
			v := floats(t, out, tr.Name)
			orig := floats(t, g, tr.Name)
			var zeros int
			maxPruned, minKept := 0.0, math.Inf(1)
			for i := range v {
				if v[i] == 0 {
					zeros++
					maxPruned = max(maxPruned, math.Abs(float64(orig[i])))
				} else {
					if v[i] != orig[i] {
						t.Fatalf("%s: kept value changed", tr.Name)
					}
					minKept = min(minKept, math.Abs(float64(orig[i])))
				}
			}
			if zeros != len(v)/2 || int64(zeros) != tr.Zeros || tr.Sparsity != 0.5 {
				t.Errorf("%s: %d zeros of %d (report %d, %g)", tr.Name, zeros, len(v), tr.Zeros, tr.Sparsity)
			}
			if maxPruned > minKept {
				t.Errorf("%s: pruned %g > kept %g", tr.Name, maxPruned, minKept)
			}
		}
		if e := floats(t, out, "model.embed_tokens.weight"); slices.Contains(e, 0) {
			t.Error("embedding pruned")
		}
	}
}

func TestMagnitudeGlobal(t *testing.T) {
	g := llamaGraph(t, weights.F32)
	// Scale one tensor down so that a global threshold treats tensors
	// differently from per-tensor pruning, and add exact ties.
	small := floats(t, g, "model.layers.0.mlp.up_proj.weight")
	for i := range small {
		small[i] *= 0.01
	}
	ties := floats(t, g, "model.layers.1.mlp.up_proj.weight")
	for i := 0; i < 40; i++ {
		ties[i] = 0.25
	}
	x, _ := weights.FromFloat32("model.layers.0.mlp.up_proj.weight", weights.F32, []int64{24, 16}, small)
	g.Replace(x)
	y, _ := weights.FromFloat32("model.layers.1.mlp.up_proj.weight", weights.F32, []int64{24, 16}, ties)
	g.Replace(y)
	cfg := cfgOf(t, llamaCfg)
	for _, s := range []float64{0.3, 0.6, 0} {
		out, rep, err := Magnitude(g, cfg, s, true)
		if err != nil {
			t.Fatal(err)
		}
		var all, pruned []float64
		var total, zeros int
		for _, tr := range rep.Tensors {
			v := floats(t, out, tr.Name)
			orig := floats(t, g, tr.Name)
			for i := range v {
				total++
				if v[i] == 0 {
					zeros++
					pruned = append(pruned, math.Abs(float64(orig[i])))
				} else {
					all = append(all, math.Abs(float64(orig[i])))
				}
			}
		}
		if want := int(math.Floor(s * float64(total))); zeros != want {
			t.Errorf("sparsity %g: %d zeros, want %d", s, zeros, want)
		}
		if len(pruned) > 0 && slices.Max(pruned) > slices.Min(all) {
			t.Errorf("sparsity %g: a pruned magnitude %g exceeds a kept one %g", s, slices.Max(pruned), slices.Min(all))
		}
		if s == 0.3 {
			if sp := rep.Tensors[5].Sparsity; rep.Tensors[5].Name != "model.layers.0.mlp.up_proj.weight" || sp != 1 {
				t.Errorf("the scaled-down tensor should be fully pruned: %s %g", rep.Tensors[5].Name, sp)
			}
		}
	}
	if _, _, err := Magnitude(g, cfg, 1, true); err == nil {
		t.Error("sparsity 1 accepted")
	}
}

func TestNM(t *testing.T) {
	const gpt2 = `{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","vocab_size":10,"n_embd":8,"n_layer":1,"n_head":2,"n_positions":8}`
	r := rand.New(rand.NewPCG(3, 4))
	g := newGraph(t, gpt2,
		rnd(t, r, "transformer.h.0.attn.c_attn.weight", weights.F16, 8, 24),
		rnd(t, r, "transformer.h.0.mlp.c_proj.weight", weights.F32, 32, 8),
	)
	cfg := cfgOf(t, gpt2)
	out, rep, err := NM(g, cfg, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rep.Tensors {
		if tr.Sparsity != 0.5 {
			t.Errorf("%s: sparsity %g", tr.Name, tr.Sparsity)
		}
		x, _ := g.Tensor(tr.Name)
		outDim, inDim := arch.LinearDims(cfg, x)
		v, orig := floats(t, out, tr.Name), floats(t, g, tr.Name)
		// Conv1D: inputs run down the rows.
		for o := 0; o < int(outDim); o++ {
			for g0 := 0; g0 < int(inDim); g0 += 4 {
				var kept, gone []float64
				for j := 0; j < 4; j++ {
					i := (g0+j)*int(outDim) + o
					if v[i] == 0 {
						gone = append(gone, math.Abs(float64(orig[i])))
					} else {
						kept = append(kept, math.Abs(float64(orig[i])))
					}
				}
				if len(kept) != 2 || slices.Max(gone) > slices.Min(kept) {
					t.Fatalf("%s: group (%d,%d): kept %v pruned %v", tr.Name, o, g0, kept, gone)
				}
			}
		}
	}
	if _, _, err := NM(g, cfg, 2, 3); err == nil {
		t.Error("input size 8 accepted for M=3")
	}
	if _, _, err := NM(g, cfg, 4, 4); err == nil {
		t.Error("4:4 accepted")
	}
}

func TestHeadsLlamaGQA(t *testing.T) {
	g := llamaGraph(t, weights.F32)
	cfg := cfgOf(t, llamaCfg)
	// Heads 2 and 3 share key/value head 1.
	out, rep, err := Heads(g, cfg, map[int][]int{0: {2, 3}, 1: {0, 1}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Heads   int `json:"num_attention_heads"`
		KV      int `json:"num_key_value_heads"`
		HeadDim int `json:"head_dim"`
	}
	json.Unmarshal(out.Config, &c)
	if c.Heads != 2 || c.KV != 1 || c.HeadDim != 4 {
		t.Fatalf("config %+v", c)
	}
	q0, oq := floats(t, out, "model.layers.0.self_attn.q_proj.weight"), floats(t, g, "model.layers.0.self_attn.q_proj.weight")
	if !slices.Equal(q0, oq[:8*16]) {
		t.Error("layer 0 should keep q rows of heads 0, 1")
	}
	k1, ok := floats(t, out, "model.layers.1.self_attn.k_proj.weight"), floats(t, g, "model.layers.1.self_attn.k_proj.weight")
	if !slices.Equal(k1, ok[4*16:]) {
		t.Error("layer 1 should keep k rows of kv head 1")
	}
	o1, oo := floats(t, out, "model.layers.1.self_attn.o_proj.weight"), floats(t, g, "model.layers.1.self_attn.o_proj.weight")
	for r := 0; r < 16; r++ {
		if !slices.Equal(o1[r*8:(r+1)*8], oo[r*16+8:(r+1)*16]) {
			t.Fatal("o_proj columns of heads 2, 3 expected in layer 1")
		}
	}
	if len(rep.Tensors) != 8 {
		t.Errorf("%d tensors changed", len(rep.Tensors))
	}
	if _, _, err := Heads(g, cfg, map[int][]int{0: {1, 2}, 1: {0, 1}}, 0); err == nil {
		t.Error("splitting a key/value group accepted")
	}
	if _, _, err := Heads(g, cfg, map[int][]int{0: {2, 3}}, 0); err == nil {
		t.Error("uneven head counts accepted for llama")
	}
	if _, rep, err := Heads(g, cfg, nil, 2); err != nil || rep.Config["num_attention_heads"] != 2 {
		t.Errorf("auto: %v %v", rep, err)
	}
}

func TestHeadsGPT2Fused(t *testing.T) {
	const gpt2 = `{"architectures":["GPT2Model"],"model_type":"gpt2","vocab_size":10,"n_embd":8,"n_layer":1,"n_head":4,"n_positions":8,"pruned_heads":{"0":[1]}}`
	r := rand.New(rand.NewPCG(5, 6))
	// One head (1) is already gone: 3 heads of size 2 remain.
	g := newGraph(t, gpt2,
		rnd(t, r, "h.0.attn.c_attn.weight", weights.F32, 8, 18),
		rnd(t, r, "h.0.attn.c_attn.bias", weights.F32, 18),
		rnd(t, r, "h.0.attn.c_proj.weight", weights.F32, 6, 8),
	)
	cfg := cfgOf(t, gpt2)
	out, _, err := Heads(g, cfg, map[int][]int{0: {3}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Original heads 0, 2, 3 are at positions 0, 1, 2; head 3 (position 2) goes.
	b, ob := floats(t, out, "h.0.attn.c_attn.bias"), floats(t, g, "h.0.attn.c_attn.bias")
	want := slices.Concat(ob[0:4], ob[6:10], ob[12:16])
	if !slices.Equal(b, want) {
		t.Errorf("c_attn bias %v, want %v", b, want)
	}
	p, op := floats(t, out, "h.0.attn.c_proj.weight"), floats(t, g, "h.0.attn.c_proj.weight")
	if !slices.Equal(p, op[:4*8]) {
		t.Error("c_proj rows")
	}
	var c struct {
		Pruned map[string][]int `json:"pruned_heads"`
	}
	json.Unmarshal(out.Config, &c)
	if fmt.Sprint(c.Pruned) != "map[0:[1 3]]" {
		t.Errorf("pruned_heads %v", c.Pruned)
	}
	// Requests the model cannot take are ErrSpec: a head already gone, all
	// heads, a layer or head beyond the model's.
	for _, bad := range []map[int][]int{{0: {1}}, {0: {0, 2, 3}}, {9: {0}}, {0: {0}, 1: {0}}, {0: {4}}, {}} {
		if _, _, err := Heads(g, cfg, bad, 0); !errors.Is(err, ErrSpec) {
			t.Errorf("Heads %v: %v, want ErrSpec", bad, err)
		}
	}
	if _, _, err := Heads(g, cfg, nil, 3); !errors.Is(err, ErrSpec) {
		t.Errorf("removing 3 of 3 heads per layer: %v, want ErrSpec", err)
	}
}

func TestFFN(t *testing.T) {
	g := llamaGraph(t, weights.BF16)
	cfg := cfgOf(t, llamaCfg)
	out, rep, err := FFN(g, cfg, 0.75)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Config["intermediate_size"] != 18 {
		t.Fatalf("config %v", rep.Config)
	}
	up, _ := out.Tensor("model.layers.1.mlp.up_proj.weight")
	down, _ := out.Tensor("model.layers.1.mlp.down_proj.weight")
	if !slices.Equal(up.Shape, []int64{18, 16}) || !slices.Equal(down.Shape, []int64{16, 18}) || up.DType != weights.BF16 {
		t.Fatalf("shapes %v %v", up.Shape, down.Shape)
	}
	// The kept rows of up_proj are rows of the original, in order, and
	// down_proj keeps the same neurons as columns.
	u, ou := floats(t, out, "model.layers.1.mlp.up_proj.weight"), floats(t, g, "model.layers.1.mlp.up_proj.weight")
	d, od := floats(t, out, "model.layers.1.mlp.down_proj.weight"), floats(t, g, "model.layers.1.mlp.down_proj.weight")
	next := 0
	for k := 0; k < 18; k++ {
		found := -1
		for j := next; j < 24; j++ {
			if slices.Equal(u[k*16:(k+1)*16], ou[j*16:(j+1)*16]) {
				found = j
				break
			}
		}
		if found < 0 {
			t.Fatalf("kept row %d is not an original row in order", k)
		}
		for r := 0; r < 16; r++ {
			if d[r*18+k] != od[r*24+found] {
				t.Fatalf("down_proj column %d is not original column %d", k, found)
			}
		}
		next = found + 1
	}
	var c struct {
		Inter int `json:"intermediate_size"`
	}
	json.Unmarshal(out.Config, &c)
	if c.Inter != 18 {
		t.Errorf("config intermediate_size %d", c.Inter)
	}
	if _, _, err := FFN(g, cfg, 0); err == nil {
		t.Error("keep 0 accepted")
	}
}

func TestParseHeads(t *testing.T) {
	e, k, err := ParseHeads("0:1,3; 2:0")
	if err != nil || k != 0 || fmt.Sprint(e) != "map[0:[1 3] 2:[0]]" {
		t.Errorf("%v %d %v", e, k, err)
	}
	if _, k, err := ParseHeads("2"); err != nil || k != 2 {
		t.Errorf("%d %v", k, err)
	}
	for _, bad := range []string{"", "x", "0:a", "-1:2", "0", "1:"} {
		if _, _, err := ParseHeads(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
