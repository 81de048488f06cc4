package quantize

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

// w4a16Rounds is the number of interleaved rounds of BenchmarkW4A16Speed.
var w4a16Rounds = flag.Int("w4a16.rounds", 1, "rounds of BenchmarkW4A16Speed (int8 and w4a16 alternate)")

// w4a16Bench holds the models of BenchmarkW4A16Speed, built once per
// process so that -count repeats only the timed runs.
var w4a16Bench struct {
	once   sync.Once
	err    error
	graphs map[string]*weights.Graph // w4a16Models
}

// w4a16Models are the models of BenchmarkW4A16Speed: int8 and W4A16 with
// the head in BF16 (as the passes keep it), and both with the head
// quantized too (quantize --include lm_head.weight).
var w4a16Models = []struct {
	name    string
	scheme  Scheme
	group   int
	include []string
}{
	{"int8", Int8, 0, nil},
	{"w4a16-g128", W4A16, 128, nil},
	{"head-q/int8", Int8, 0, []string{"lm_head.weight"}},
	{"head-q/w4a16-g128", W4A16, 128, []string{"lm_head.weight"}},
}

// tinyLlamaGraph returns a Llama model of TinyLlama's width (hidden 2048,
// intermediate 5632, 32 heads, 4 KV heads, vocabulary 32000, untied head)
// with L layers of random BF16 weights (TinyLlama's dtype), N(0, 1/in),
// norms 1 + N(0, 0.01).
func tinyLlamaGraph(L int) (*weights.Graph, *arch.Config, error) {
	const H, I, V, nh, nkv = 2048, 5632, 32000, 32, 4
	dh := H / nh
	config := fmt.Sprintf(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":%d,"intermediate_size":%d,
		"num_hidden_layers":%d,"num_attention_heads":%d,"num_key_value_heads":%d,"vocab_size":%d,"rms_norm_eps":1e-5,
		"max_position_embeddings":2048,"tie_word_embeddings":false,"torch_dtype":"bfloat16"}`, H, I, L, nh, nkv, V)
	cfg, err := arch.ParseConfig([]byte(config))
	if err != nil {
		return nil, nil, err
	}
	shapes := map[string][]int64{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}, "lm_head.weight": {V, H}}
	for i := 0; i < L; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		shapes[p+"input_layernorm.weight"], shapes[p+"post_attention_layernorm.weight"] = []int64{H}, []int64{H}
		shapes[p+"self_attn.q_proj.weight"], shapes[p+"self_attn.o_proj.weight"] = []int64{nh * int64(dh), H}, []int64{H, nh * int64(dh)}
		shapes[p+"self_attn.k_proj.weight"], shapes[p+"self_attn.v_proj.weight"] = []int64{nkv * int64(dh), H}, []int64{nkv * int64(dh), H}
		shapes[p+"mlp.gate_proj.weight"], shapes[p+"mlp.up_proj.weight"] = []int64{I, H}, []int64{I, H}
		shapes[p+"mlp.down_proj.weight"] = []int64{H, I}
	}
	r := rand.New(rand.NewPCG(7, 8))
	g := weights.NewGraph()
	g.Config = []byte(config)
	for name, shape := range shapes {
		n, _ := weights.NumElements(shape)
		v := make([]float32, n)
		sd := 1 / math.Sqrt(float64(shape[len(shape)-1]))
		for i := range v {
			v[i] = float32(r.NormFloat64() * sd)
			if len(shape) == 1 {
				v[i] = 1 + v[i]/10
			}
		}
		t, err := weights.FromFloat32(name, weights.BF16, shape, v)
		if err != nil {
			return nil, nil, err
		}
		g.Add(t)
	}
	return g, cfg, nil
}

// BenchmarkW4A16Speed times the native forward pass of a TinyLlama-width
// 4-layer model (tinyLlamaGraph) quantized weight-only to int8 (per
// channel) and to W4A16 (int4 in groups of 128, symmetric), at sequence 1
// (a single-token forward: the dot-product kernels) and 128 (a prefill:
// the blocked product), on one thread and on two. The embedding stays
// BF16; the head stays BF16 in the figures named int8 and w4a16-g128 (as
// the passes keep it) and is quantized with the layers in those under
// head-q/ (as --include lm_head.weight does). The models alternate,
// figure by figure, for -w4a16.rounds rounds; the load average when a
// figure is taken is reported with it (the machine may be shared), and the CPU time
// per op.
//
//	go test ./quantize -run '^$' -bench W4A16Speed -benchtime 5x -w4a16.rounds 5
func BenchmarkW4A16Speed(b *testing.B) {
	w := &w4a16Bench
	w.once.Do(func() {
		g, cfg, err := tinyLlamaGraph(4)
		if err != nil {
			w.err = err
			return
		}
		w.graphs = map[string]*weights.Graph{}
		for _, m := range w4a16Models {
			qg, _, err := Quantize(g, cfg, Options{Scheme: m.scheme, GroupSize: m.group, Include: m.include})
			if err != nil {
				w.err = err
				return
			}
			mg := qg.Derive()
			for _, t := range qg.Tensors() {
				data, err := t.Bytes()
				if err != nil {
					w.err = err
					return
				}
				x, _ := weights.NewTensor(t.Name, t.DType, t.Shape, data)
				mg.Add(x)
			}
			w.graphs[m.name] = mg
		}
	})
	if w.err != nil {
		b.Fatal(w.err)
	}
	models := map[string]*forward.Model{}
	for r := 0; r < *w4a16Rounds; r++ {
		for _, threads := range []int{1, 2} {
			w4a16Speed(b, models, threads)
		}
	}
}

// w4a16Speed runs one round of BenchmarkW4A16Speed at the given threads,
// loading the models (kept in models by name and threads) the first time.
func w4a16Speed(b *testing.B, models map[string]*forward.Model, threads int) {
	w := &w4a16Bench
	for name, g := range w.graphs {
		key := fmt.Sprintf("%s/%d", name, threads)
		if models[key] != nil {
			continue
		}
		m, err := forward.Load(g, nil, forward.Options{Threads: threads})
		if err != nil {
			b.Fatal(err)
		}
		if !m.Info().Quantized {
			b.Fatalf("%s: the model did not load as quantized", name)
		}
		models[key] = m
	}
	for _, seq := range []int{1, 128} {
		ids := make([]int, seq)
		for i := range ids {
			ids[i] = (i*37 + 11) % 32000
		}
		for _, model := range w4a16Models {
			name := model.name
			if seq > 1 && model.include != nil {
				continue // single-token figures only: the acceptance compares those
			}
			m := models[fmt.Sprintf("%s/%d", name, threads)]
			b.Run(fmt.Sprintf("threads=%d/seq=%d/%s", threads, seq, name), func(b *testing.B) {
				if _, err := m.Run(context.Background(), ids); err != nil { // warm up
					b.Fatal(err)
				}
				load := loadAverage()
				c0 := processCPU()
				for b.Loop() {
					if _, err := m.Run(context.Background(), ids); err != nil {
						b.Fatal(err)
					}
				}
				if c := processCPU() - c0; c > 0 {
					b.ReportMetric(float64(c.Nanoseconds())/1e6/float64(b.N), "cpu-ms/op")
				}
				if load >= 0 {
					b.ReportMetric(max(load, loadAverage()), "load")
				}
			})
		}
	}
}

// loadAverage returns the 1-minute load average, -1 where /proc/loadavg
// cannot be read.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
