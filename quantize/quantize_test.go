package quantize

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

func mustConfig(t testing.TB, raw string) *arch.Config {
	t.Helper()
	c, err := arch.ParseConfig([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	llamaConfig = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}`
	gpt2Config  = `{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","vocab_size":10,"n_embd":8,"n_layer":1,"n_head":2,"n_positions":8}`
)

// TestInt8MatchesTorch checks int8 values and scales, bit for bit, against
// PyTorch's computation of the same scheme (testdata/gen_int8.py), for every
// weight dtype, per channel and per group, in both layouts.
func TestInt8MatchesTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/int8.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			DType            string
			Out, In, Group   int
			Conv1D           bool
			Shape            []int64
			Weight, Q, Scale string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) < 20 {
		t.Fatalf("%d cases", len(doc.Cases))
	}
	for _, c := range doc.Cases {
		name := fmt.Sprintf("%s/%dx%d/g%d/conv1d=%v", c.DType, c.Out, c.In, c.Group, c.Conv1D)
		t.Run(name, func(t *testing.T) {
			d, _ := weights.ParseDType(c.DType)
			w, _ := base64.StdEncoding.DecodeString(c.Weight)
			wantQ, _ := base64.StdEncoding.DecodeString(c.Q)
			wantS, _ := base64.StdEncoding.DecodeString(c.Scale)
			cfg, tname := mustConfig(t, llamaConfig), "model.layers.0.mlp.up_proj.weight"
			if c.Conv1D {
				cfg, tname = mustConfig(t, gpt2Config), "transformer.h.0.mlp.c_fc.weight"
			}
			src, err := weights.NewTensor(tname, d, c.Shape, w)
			if err != nil {
				t.Fatal(err)
			}
			g := weights.NewGraph()
			g.Add(src)
			out, rep, err := Quantize(g, cfg, Options{Scheme: Int8, GroupSize: c.Group})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Changed) != 1 || rep.Changed[0].Scale != tname+"_scale" {
				t.Fatalf("report %+v", rep)
			}
			q, _ := out.Tensor(tname)
			gotQ, err := q.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if q.DType != weights.I8 || !bytes.Equal(gotQ, wantQ) {
				t.Errorf("int8 values differ from torch")
			}
			s, _ := out.Tensor(tname + "_scale")
			gotS, err := s.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			groups := int64(1)
			if c.Group > 0 {
				groups = int64(c.In / c.Group)
			}
			if s.DType != d || s.Shape[0] != int64(c.Out) || s.Shape[1] != groups || !bytes.Equal(gotS, wantS) {
				t.Errorf("scales differ from torch: %v %v", s.DType, s.Shape)
			}
			// Dequantized values are within half a step of the original.
			m := &matrix{out: c.Out, in: c.In, inMajor: c.Conv1D, dtype: d, data: w}
			scales := make([]float32, len(gotS)/d.Size())
			weights.DecodeFloat32(scales, gotS, d)
			deq := dequantizeInt8(gotQ, m, scales, c.Group)
			orig := make([]float32, len(deq))
			weights.DecodeFloat32(orig, w, d)
			for i := range deq {
				r, col := i/int(c.Shape[1]), i%int(c.Shape[1])
				o, in := r, col
				if c.Conv1D {
					o, in = col, r
				}
				gs := c.In
				if c.Group > 0 {
					gs = c.Group
				}
				step := scales[o*int(groups)+in/gs]
				if diff := math.Abs(float64(deq[i] - orig[i])); diff > float64(step)*0.5001+1e-7 {
					t.Fatalf("element %d: %g vs %g (step %g)", i, deq[i], orig[i], step)
				}
			}
		})
	}
}

func graphOf(t *testing.T, tensors ...*weights.Tensor) *weights.Graph {
	t.Helper()
	g := weights.NewGraph()
	for _, x := range tensors {
		if err := g.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func randTensor(t *testing.T, name string, d weights.DType, shape ...int64) *weights.Tensor {
	t.Helper()
	n, _ := weights.NumElements(shape)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i)*0.7)) * 0.1
	}
	x, err := weights.FromFloat32(name, d, shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestInt8Rule checks which tensors the int8 rule quantizes, that flags
// change it, and the compressed-tensors config it writes.
func TestInt8Rule(t *testing.T) {
	cfg := mustConfig(t, llamaConfig)
	g := graphOf(t,
		randTensor(t, "model.embed_tokens.weight", weights.F32, 10, 8),
		randTensor(t, "model.layers.0.input_layernorm.weight", weights.F32, 8),
		randTensor(t, "model.layers.0.self_attn.q_proj.weight", weights.F32, 8, 8),
		randTensor(t, "model.layers.0.self_attn.q_proj.bias", weights.F32, 8),
		randTensor(t, "model.layers.0.mlp.down_proj.weight", weights.F32, 8, 16),
		randTensor(t, "lm_head.weight", weights.F32, 10, 8),
	)
	g.Config = []byte(llamaConfig)
	out, rep, err := Quantize(g, cfg, Options{Scheme: Int8})
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	for _, c := range rep.Changed {
		changed = append(changed, c.Name)
	}
	if fmt.Sprint(changed) != "[model.layers.0.self_attn.q_proj.weight model.layers.0.mlp.down_proj.weight]" {
		t.Errorf("changed %v", changed)
	}
	if len(rep.Kept) != 4 || out.Len() != 8 {
		t.Errorf("kept %v, %d tensors", rep.Kept, out.Len())
	}
	var doc struct {
		QuantizationConfig struct {
			QuantMethod  string `json:"quant_method"`
			Format       string
			Ignore       []string
			ConfigGroups map[string]struct {
				Targets []string
				Weights struct {
					NumBits   int `json:"num_bits"`
					Strategy  string
					GroupSize *int `json:"group_size"`
					Symmetric bool
				}
			} `json:"config_groups"`
		} `json:"quantization_config"`
		VocabSize int `json:"vocab_size"`
	}
	if err := json.Unmarshal(out.Config, &doc); err != nil {
		t.Fatal(err)
	}
	qc := doc.QuantizationConfig
	w := qc.ConfigGroups["group_0"].Weights
	if qc.QuantMethod != "compressed-tensors" || qc.Format != "int-quantized" || w.NumBits != 8 || w.Strategy != "channel" ||
		w.GroupSize != nil || !w.Symmetric || fmt.Sprint(qc.Ignore) != "[lm_head]" || doc.VocabSize != 10 {
		t.Errorf("quantization_config %+v", doc)
	}

	_, rep, err = Quantize(g, cfg, Options{Scheme: Int8, GroupSize: 4, Keep: []string{"*down_proj*"}, Include: []string{"lm_head.weight"}})
	if err != nil {
		t.Fatal(err)
	}
	changed = changed[:0]
	for _, c := range rep.Changed {
		changed = append(changed, c.Name)
	}
	if fmt.Sprint(changed) != "[model.layers.0.self_attn.q_proj.weight lm_head.weight]" {
		t.Errorf("with flags: changed %v", changed)
	}
	if _, _, err := Quantize(g, cfg, Options{Scheme: Int8, GroupSize: 3}); err == nil {
		t.Error("group size that does not divide the input size accepted")
	}
	if _, _, err := Quantize(g, cfg, Options{Scheme: "int4"}); err == nil {
		t.Error("unknown scheme accepted")
	}
}

// A quantization that would change nothing is refused with
// ErrNothingToQuantize: an int8 model quantized again, everything kept, an
// f16 model cast to fp16.
func TestNothingToQuantize(t *testing.T) {
	cfg := mustConfig(t, llamaConfig)
	g := graphOf(t,
		randTensor(t, "model.embed_tokens.weight", weights.F32, 10, 8),
		randTensor(t, "model.layers.0.self_attn.q_proj.weight", weights.F32, 8, 8),
		randTensor(t, "lm_head.weight", weights.F32, 10, 8),
	)
	g.Config = []byte(llamaConfig)
	once, _, err := Quantize(g, cfg, Options{Scheme: Int8})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Quantize(once, cfg, Options{Scheme: Int8}); !errors.Is(err, ErrNothingToQuantize) {
		t.Errorf("int8 of an int8 model: %v, want ErrNothingToQuantize", err)
	}
	if _, _, err := Quantize(g, cfg, Options{Scheme: Int8, Keep: []string{"*"}}); !errors.Is(err, ErrNothingToQuantize) {
		t.Errorf("int8 keeping everything: %v, want ErrNothingToQuantize", err)
	}
	half, _, err := Quantize(g, cfg, Options{Scheme: FP16})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Quantize(half, cfg, Options{Scheme: FP16}); !errors.Is(err, ErrNothingToQuantize) {
		t.Errorf("fp16 of an f16 model: %v, want ErrNothingToQuantize", err)
	}
	if _, _, err := Quantize(half, cfg, Options{Scheme: BF16}); err != nil {
		t.Errorf("bf16 of an f16 model: %v", err)
	}
}

func TestHalfSchemes(t *testing.T) {
	cfg := mustConfig(t, llamaConfig)
	big, _ := weights.FromFloat32("model.layers.0.mlp.up_proj.weight", weights.F32, []int64{2, 2}, []float32{1e5, -1, 0.5, 2})
	ids, _ := weights.NewTensor("model.position_ids", weights.I64, []int64{1}, make([]byte, 8))
	g := graphOf(t, big, ids, randTensor(t, "model.norm.weight", weights.F32, 8))
	g.Config = []byte(llamaConfig)
	for _, s := range []Scheme{FP16, BF16} {
		out, rep, err := Quantize(g, cfg, Options{Scheme: s})
		if err != nil {
			t.Fatal(err)
		}
		want := weights.F16
		if s == BF16 {
			want = weights.BF16
		}
		x, _ := out.Tensor("model.layers.0.mlp.up_proj.weight")
		if x.DType != want || len(rep.Changed) != 2 {
			t.Fatalf("%s: %v %+v", s, x.DType, rep)
		}
		if s == FP16 && rep.Changed[0].Overflows != 1 {
			t.Errorf("fp16: 1e5 overflow not reported: %+v", rep.Changed[0])
		}
		if s == BF16 && rep.Changed[0].Overflows != 0 {
			t.Errorf("bf16: %+v", rep.Changed[0])
		}
		if i, _ := out.Tensor("model.position_ids"); i.DType != weights.I64 {
			t.Errorf("integer buffer cast")
		}
		var c struct {
			TorchDType string `json:"torch_dtype"`
		}
		json.Unmarshal(out.Config, &c)
		if c.TorchDType != map[Scheme]string{FP16: "float16", BF16: "bfloat16"}[s] {
			t.Errorf("torch_dtype %q", c.TorchDType)
		}
	}
}
