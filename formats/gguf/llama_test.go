package gguf_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// The GGUF output of `hubmirror quantize --format gguf` is not checked by
// the forward pass (it has no GGUF reader); these tests are its check: they
// write Llama models through quantize.GGUF, read the file back with the
// test reader (reader_test.go), and compare every tensor with the source
// after the rotary reordering, within Q8_0's error.

type llamaShape struct {
	hidden, inter, layers, heads, kvHeads, vocab int
	bias                                         bool
	dtype                                        weights.DType
}

func llamaGraph(t *testing.T, s llamaShape, extra string) (*weights.Graph, *arch.Config) {
	t.Helper()
	cfgJSON := fmt.Sprintf(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":%d,"intermediate_size":%d,
		"num_hidden_layers":%d,"num_attention_heads":%d,"num_key_value_heads":%d,"vocab_size":%d,"rms_norm_eps":1e-5,
		"rope_theta":500000.0,"max_position_embeddings":4096,"tie_word_embeddings":false,"attention_bias":%v%s}`,
		s.hidden, s.inter, s.layers, s.heads, s.kvHeads, s.vocab, s.bias, extra)
	cfg, err := arch.ParseConfig([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	dh := s.hidden / s.heads
	shapes := [][2]any{{"model.embed_tokens.weight", []int64{int64(s.vocab), int64(s.hidden)}}}
	for i := 0; i < s.layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		shapes = append(shapes,
			[2]any{p + "input_layernorm.weight", []int64{int64(s.hidden)}},
			[2]any{p + "self_attn.q_proj.weight", []int64{int64(s.heads * dh), int64(s.hidden)}},
			[2]any{p + "self_attn.k_proj.weight", []int64{int64(s.kvHeads * dh), int64(s.hidden)}},
			[2]any{p + "self_attn.v_proj.weight", []int64{int64(s.kvHeads * dh), int64(s.hidden)}},
			[2]any{p + "self_attn.o_proj.weight", []int64{int64(s.hidden), int64(s.heads * dh)}},
			[2]any{p + "post_attention_layernorm.weight", []int64{int64(s.hidden)}},
			[2]any{p + "mlp.gate_proj.weight", []int64{int64(s.inter), int64(s.hidden)}},
			[2]any{p + "mlp.up_proj.weight", []int64{int64(s.inter), int64(s.hidden)}},
			[2]any{p + "mlp.down_proj.weight", []int64{int64(s.hidden), int64(s.inter)}},
			[2]any{p + "self_attn.rotary_emb.inv_freq", []int64{int64(dh / 2)}},
		)
		if s.bias {
			shapes = append(shapes,
				[2]any{p + "self_attn.q_proj.bias", []int64{int64(s.heads * dh)}},
				[2]any{p + "self_attn.k_proj.bias", []int64{int64(s.kvHeads * dh)}},
				[2]any{p + "self_attn.v_proj.bias", []int64{int64(s.kvHeads * dh)}})
		}
	}
	shapes = append(shapes, [2]any{"model.norm.weight", []int64{int64(s.hidden)}}, [2]any{"lm_head.weight", []int64{int64(s.vocab), int64(s.hidden)}})
	r := rand.New(rand.NewPCG(9, 9))
	g := weights.NewGraph()
	g.Config = []byte(cfgJSON)
	for _, sh := range shapes {
		name, shape := sh[0].(string), sh[1].([]int64)
		n, _ := weights.NumElements(shape)
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.05)
		}
		if n > 3 {
			v[3] = 0.9 // an outlier in the first block
		}
		x, err := weights.FromFloat32(name, s.dtype, shape, v)
		if err != nil {
			t.Fatal(err)
		}
		g.Add(x)
	}
	return g, cfg
}

func writeGGUF(t *testing.T, g *weights.Graph, cfg *arch.Config, opts quantize.GGUFOptions) (*gguf.File, *quantize.GGUFModel) {
	t.Helper()
	m, err := quantize.GGUF(g, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "model.gguf")
	if err := gguf.WriteFile(p, m.Metadata, m.Tensors); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, m
}

// expectedRows returns the source tensor as the GGUF file should hold it:
// float32 rows in order, q and k reordered by convert.RotaryToMeta (which
// is checked against transformers' permutation; llama.cpp's
// LlamaModel.permute is its inverse, the same reordering).
func expectedRows(t *testing.T, src *weights.Tensor, heads int) []float32 {
	t.Helper()
	x := src
	if heads > 0 {
		var err error
		if x, err = convert.RotaryToMeta(src, heads); err != nil {
			t.Fatal(err)
		}
	}
	v, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLlamaGGUF(t *testing.T) {
	for _, s := range []llamaShape{
		{hidden: 64, inter: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 40, dtype: weights.F32},
		{hidden: 64, inter: 128, layers: 1, heads: 8, kvHeads: 8, vocab: 33, bias: true, dtype: weights.BF16},
		{hidden: 48, inter: 64, layers: 1, heads: 4, kvHeads: 1, vocab: 20, dtype: weights.F16}, // rows of 48: F16
	} {
		t.Run(fmt.Sprintf("%v/h%d/kv%d/bias=%v", s.dtype, s.hidden, s.kvHeads, s.bias), func(t *testing.T) {
			g, cfg := llamaGraph(t, s, "")
			f, m := writeGGUF(t, g, cfg, quantize.GGUFOptions{Name: "tiny", Threads: 2, NoVocab: true})

			wantMD := map[string]any{
				"general.architecture": "llama", "general.name": "tiny", "general.file_type": uint32(7),
				"general.quantization_version": uint32(2), "llama.block_count": uint32(s.layers),
				"llama.context_length": uint32(4096), "llama.embedding_length": uint32(s.hidden),
				"llama.feed_forward_length": uint32(s.inter), "llama.attention.head_count": uint32(s.heads),
				"llama.attention.head_count_kv": uint32(s.kvHeads), "llama.rope.freq_base": float32(500000),
				"llama.attention.layer_norm_rms_epsilon": float32(1e-5), "llama.vocab_size": uint32(s.vocab),
				"llama.rope.dimension_count": uint32(s.hidden / s.heads), "tokenizer.ggml.model": "no_vocab",
			}
			for k, want := range wantMD {
				if got, ok := f.Get(k); !ok || got != want {
					t.Errorf("%s = %v (%T), want %v (%T)", k, got, got, want, want)
				}
			}
			if f.Metadata[0].Key != "general.architecture" {
				t.Errorf("first key %s", f.Metadata[0].Key)
			}

			wantTensors := 3 + 9*s.layers
			if s.bias {
				wantTensors += 3 * s.layers
			}
			if len(f.Tensors) != wantTensors || len(m.Report.Tensors) != wantTensors {
				t.Fatalf("%d tensors in the file, %d reported, want %d", len(f.Tensors), len(m.Report.Tensors), wantTensors)
			}
			if !slices.Contains(m.Report.Skipped, "model.layers.0.self_attn.rotary_emb.inv_freq") {
				t.Errorf("skipped %v", m.Report.Skipped)
			}
			for _, rt := range m.Report.Tensors {
				src, _ := g.Tensor(rt.Name)
				ft, ok := f.Tensor(rt.GGUF)
				if !ok {
					t.Fatalf("%s (%s) not in the file", rt.GGUF, rt.Name)
				}
				// Dimensions reversed; types as llama.cpp picks them.
				wantDims := make([]uint64, len(src.Shape))
				for i, d := range src.Shape {
					wantDims[len(src.Shape)-1-i] = uint64(d)
				}
				wantType := gguf.TypeF32
				if len(src.Shape) == 2 {
					wantType = gguf.TypeQ8_0
					if src.Shape[1]%32 != 0 {
						wantType = gguf.TypeF16
					}
				}
				if !slices.Equal(ft.Dims, wantDims) || ft.Type != wantType {
					t.Errorf("%s: dims %v type %v, want %v %v", rt.GGUF, ft.Dims, ft.Type, wantDims, wantType)
				}
				heads := 0
				switch {
				case strings.Contains(rt.GGUF, ".attn_q."):
					heads = s.heads
				case strings.Contains(rt.GGUF, ".attn_k."):
					heads = s.kvHeads
				}
				if rt.Permuted != (heads > 0) {
					t.Errorf("%s: permuted %v", rt.GGUF, rt.Permuted)
				}
				want := expectedRows(t, src, heads)
				got, err := ft.Dequantize()
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d values, want %d", rt.GGUF, len(got), len(want))
				}
				for b := 0; b < len(want); b += 32 {
					blk := want[b:min(b+32, len(want))]
					var amax float64
					for _, v := range blk {
						amax = max(amax, math.Abs(float64(v)))
					}
					// Q8_0: half a step of d = amax/127, plus the f16
					// rounding of d times a code of at most 127. F16:
					// relative 2^-11. F32: exact.
					bound := amax/127*(0.5+127.0/2048) + 1e-12
					switch ft.Type {
					case gguf.TypeF16:
						bound = amax/2048 + 1e-7
					case gguf.TypeF32:
						bound = 0
					}
					for j, v := range blk {
						if d := math.Abs(float64(got[b+j] - v)); d > bound {
							t.Fatalf("%s element %d: %g, want %g (bound %g)", rt.GGUF, b+j, got[b+j], v, bound)
						}
					}
				}
				// And Q8_0 data is exactly EncodeQ8_0 of those rows
				// (whose bytes are checked against ggml's definition).
				if ft.Type == gguf.TypeQ8_0 {
					enc := make([]byte, len(ft.Data))
					if err := gguf.EncodeQ8_0(enc, want); err != nil {
						t.Fatal(err)
					}
					if string(enc) != string(ft.Data) {
						t.Errorf("%s: Q8_0 bytes differ from EncodeQ8_0 of the expected rows", rt.GGUF)
					}
				}
			}
		})
	}
}

// TestLlamaGGUFPermutationIsLlamaCpps checks the q/k reordering against
// llama.cpp's LlamaModel.permute written as index arithmetic: rows reshaped
// to [heads, 2, hd/2], the two middle axes swapped.
func TestLlamaGGUFPermutationIsLlamaCpps(t *testing.T) {
	s := llamaShape{hidden: 64, inter: 64, layers: 1, heads: 2, kvHeads: 2, vocab: 8, dtype: weights.F32}
	g, cfg := llamaGraph(t, s, "")
	f, _ := writeGGUF(t, g, cfg, quantize.GGUFOptions{NoVocab: true})
	src, _ := g.Tensor("model.layers.0.self_attn.q_proj.weight")
	v, _ := src.Float32s()
	ft, _ := f.Tensor("blk.0.attn_q.weight")
	got, _ := ft.Dequantize()
	heads, hd, cols := s.heads, s.hidden/s.heads, s.hidden
	half := hd / 2
	for h := 0; h < heads; h++ {
		for a := 0; a < half; a++ { // after the swap, axis order is [h][a][b]
			for b := 0; b < 2; b++ {
				dst := h*hd + a*2 + b
				srcRow := h*hd + b*half + a // before: [h][b][a]
				// Compare one value well inside the row, within Q8_0 error.
				if d := math.Abs(float64(got[dst*cols+10] - v[srcRow*cols+10])); d > 0.9/127 {
					t.Fatalf("row %d should come from source row %d (diff %g)", dst, srcRow, d)
				}
			}
		}
	}
}

func TestLlamaGGUFTiedTokenizerAndRefusals(t *testing.T) {
	s := llamaShape{hidden: 64, inter: 64, layers: 1, heads: 2, kvHeads: 2, vocab: 8, dtype: weights.F32}
	g, _ := llamaGraph(t, s, "")
	tiedCfg, err := arch.ParseConfig([]byte(`{"model_type":"llama","architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":64,
		"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":8,"tie_word_embeddings":true}`))
	if err != nil {
		t.Fatal(err)
	}
	f, m := writeGGUF(t, g, tiedCfg, quantize.GGUFOptions{NoVocab: true})
	if _, ok := f.Tensor("output.weight"); ok || !slices.Contains(m.Report.Skipped, "lm_head.weight") {
		t.Errorf("tied lm_head written (skipped %v)", m.Report.Skipped)
	}
	if v, _ := f.Get("tokenizer.ggml.model"); v != "no_vocab" {
		t.Errorf("tokenizer.ggml.model = %v", v)
	}
	// Without NoVocab, a vocabulary is required.
	if _, err := quantize.GGUF(g, tiedCfg, quantize.GGUFOptions{}); !errors.Is(err, quantize.ErrGGUFVocab) {
		t.Errorf("no tokenizer: %v", err)
	}
	if v, _ := f.Get("llama.rope.freq_base"); v != float32(10000) {
		t.Errorf("default rope base %v", v)
	}

	for name, c := range map[string]struct {
		cfg   string
		graph func(*weights.Graph)
	}{
		"rope scaling": {`,"rope_scaling":{"type":"dynamic","factor":2.0}`, nil},
		"activation":   {`,"hidden_act":"gelu"`, nil},
		"unknown tensor": {"", func(g *weights.Graph) {
			x, _ := weights.FromFloat32("model.layers.0.mlp.extra.weight", weights.F32, []int64{2, 32}, make([]float32, 64))
			g.Add(x)
		}},
		"int tensor": {"", func(g *weights.Graph) {
			x, _ := weights.NewTensor("model.layers.0.mlp.up_proj.bias", weights.I32, []int64{1}, make([]byte, 4))
			g.Add(x)
		}},
	} {
		var cfg *arch.Config
		raw := fmt.Sprintf(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,"intermediate_size":64,
			"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":8%s}`, c.cfg)
		if cfg, err = arch.ParseConfig([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		g2, _ := llamaGraph(t, s, "")
		if c.graph != nil {
			c.graph(g2)
		}
		if _, err := quantize.GGUF(g2, cfg, quantize.GGUFOptions{NoVocab: true}); !errors.Is(err, quantize.ErrGGUFUnsupported) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A NaN weight fails the write, naming the tensor.
	g3, cfg3 := llamaGraph(t, s, "")
	w, _ := g3.Tensor("model.layers.0.mlp.up_proj.weight")
	b, _ := w.Bytes()
	binary.LittleEndian.PutUint32(b[40:], math.Float32bits(float32(math.NaN())))
	m3, err := quantize.GGUF(g3, cfg3, quantize.GGUFOptions{NoVocab: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := gguf.WriteFile(filepath.Join(t.TempDir(), "x.gguf"), m3.Metadata, m3.Tensors); err == nil || !errors.Is(err, gguf.ErrInvalid) {
		t.Errorf("NaN weight: %v", err)
	}
}
