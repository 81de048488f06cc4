package quantize

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/weights"
)

// The Phi-3 and mixture-of-experts layouts are run by llama.cpp in
// internal/llamacpp; these tests pin what is written and what is refused.

// fixtureGraph opens a fixture with config.json's fields replaced (nil
// deletes) and, when layers is not nil, only those layers, renumbered from
// 0.
func fixtureGraph(t *testing.T, fixture string, config map[string]any, layers []int) (*weights.Graph, *arch.Config) {
	t.Helper()
	g, err := formats.Open(filepath.Join("..", "testdata", "models", fixture))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	var raw map[string]any
	if err := json.Unmarshal(g.Config, &raw); err != nil {
		t.Fatal(err)
	}
	for k, v := range config {
		if v == nil {
			delete(raw, k)
		} else {
			raw[k] = v
		}
	}
	b, _ := json.Marshal(raw)
	cfg, err := arch.ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if layers == nil {
		return g, cfg
	}
	out := weights.NewGraph()
	out.Config = b
	layer := regexp.MustCompile(`^(model\.layers\.)(\d+)(\..*)$`)
	for _, x := range g.Tensors() {
		name := x.Name
		if m := layer.FindStringSubmatch(name); m != nil {
			i := slices.Index(layers, atoi(t, m[2]))
			if i < 0 {
				continue
			}
			name = m[1] + strconv.Itoa(i) + m[3]
		}
		data, err := x.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		y, err := weights.NewTensor(name, x.DType, x.Shape, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Add(y); err != nil {
			t.Fatal(err)
		}
	}
	return out, cfg
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tensorsByName(m *GGUFModel) map[string]*gguf.Tensor {
	out := map[string]*gguf.Tensor{}
	for _, x := range m.Tensors {
		out[x.Name] = x
	}
	return out
}

func f32s(t *testing.T, b []byte) []float32 {
	t.Helper()
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// TestGGUFPhi3 checks Phi3MiniModel's layout: fused qkv and gate_up kept
// fused, no q/k reordering, the rotary dimensions of the partial rotary
// factor, LongRoPE's factors as tensors and its attention factor.
func TestGGUFPhi3(t *testing.T) {
	g, cfg := fixtureGraph(t, "phi3-st", map[string]any{"sliding_window": nil}, nil)
	m, err := GGUF(g, cfg, GGUFOptions{NoVocab: true, Type: "q8_0"})
	if err != nil {
		t.Fatal(err)
	}
	md := metadataOf(m.Metadata)
	for k, want := range map[string]any{
		"general.architecture":                      "phi3",
		"phi3.rope.dimension_count":                 uint32(12), // 16 × 0.75
		"phi3.rope.scaling.original_context_length": uint32(8),
		// sqrt(1 + ln(64/8) / ln(8))
		"phi3.rope.scaling.attn_factor":         float32(math.Sqrt2),
		"phi3.attention.sliding_window":         uint32(0),
		"phi3.feed_forward_length":              uint32(96),
		"phi3.attention.head_count_kv":          uint32(2),
		"phi3.context_length":                   uint32(64),
		"phi3.attention.layer_norm_rms_epsilon": float32(1e-5),
	} {
		if md[k] != want {
			t.Errorf("%s = %v (%T), want %v", k, md[k], md[k], want)
		}
	}
	if _, ok := md["phi3.rope.scaling.type"]; ok {
		t.Error("phi3.rope.scaling.type written (Phi3MiniModel writes none)")
	}
	ts := tensorsByName(m)
	for name, dims := range map[string][]uint64{
		"blk.0.attn_qkv.weight":     {64, 64 + 2*2*16},
		"blk.2.ffn_up.weight":       {64, 2 * 96},
		"blk.1.ffn_down.weight":     {96, 64},
		"rope_factors_long.weight":  {6},
		"rope_factors_short.weight": {6},
		"output.weight":             {64, 150},
	} {
		x := ts[name]
		if x == nil {
			t.Errorf("no %s", name)
			continue
		}
		if !slices.Equal(x.Dims, dims) {
			t.Errorf("%s dims %v, want %v", name, x.Dims, dims)
		}
	}
	if ts["blk.0.attn_qkv.weight"].Type != gguf.TypeQ8_0 || ts["rope_factors_long.weight"].Type != gguf.TypeF32 {
		t.Errorf("types %v %v", ts["blk.0.attn_qkv.weight"].Type, ts["rope_factors_long.weight"].Type)
	}
	for name, want := range map[string][]float64{"rope_factors_long.weight": cfg.Phi3().LongRoPE.LongFactor, "rope_factors_short.weight": cfg.Phi3().LongRoPE.ShortFactor} {
		b, err := ts[name].Data.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		got := f32s(t, b)
		for i := range want {
			if got[i] != float32(want[i]) {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	for _, x := range m.Report.Tensors {
		if x.Permuted {
			t.Errorf("%s permuted: phi3 rotates the rows as Hugging Face stores them", x.Name)
		}
	}
}

// TestGGUFExperts checks the experts stacked into ffn_{gate,up,down}_exps
// ({cols, rows, experts}, expert e's matrix at e's place), the routers in
// F32, the expert hyperparameters, and qwen2moe's tied head written twice.
func TestGGUFExperts(t *testing.T) {
	for _, c := range []struct {
		fixture, arch, typ string
		config             map[string]any
		layers             []int
		block, gate        string
		keys               map[string]any
		names              []string
	}{
		{"mixtral-st", "llama", "f16", map[string]any{"sliding_window": nil}, nil, arch.MixtralMoE, arch.MixtralExpertGate,
			map[string]any{"llama.expert_count": uint32(4), "llama.expert_used_count": uint32(2)},
			[]string{"blk.2.ffn_gate_inp.weight", "blk.2.ffn_down_exps.weight", "blk.2.ffn_up_exps.weight", "output.weight"}},
		{"qwen2moe-f16-st", "qwen2moe", "q8_0", map[string]any{"decoder_sparse_step": 1, "norm_topk_prob": false, "num_hidden_layers": 1}, []int{1},
			arch.QwenMoE, arch.QwenExpertGate,
			map[string]any{"qwen2moe.expert_count": uint32(8), "qwen2moe.expert_used_count": uint32(2),
				"qwen2moe.expert_feed_forward_length": uint32(16), "qwen2moe.expert_shared_feed_forward_length": uint32(32)},
			[]string{"blk.0.ffn_gate_inp_shexp.weight", "blk.0.ffn_gate_shexp.weight", "blk.0.ffn_up_shexp.weight",
				"blk.0.ffn_down_shexp.weight", "blk.0.attn_q.bias", "output.weight"}},
		{"qwen3moe-bf16-st", "qwen3moe", "bf16", map[string]any{"norm_topk_prob": true}, nil, arch.QwenMoE, arch.QwenExpertGate,
			map[string]any{"qwen3moe.expert_count": uint32(4), "qwen3moe.expert_used_count": uint32(2), "qwen3moe.expert_feed_forward_length": uint32(24)},
			[]string{"blk.1.attn_q_norm.weight", "blk.0.ffn_down_exps.weight", "output.weight"}},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			g, cfg := fixtureGraph(t, c.fixture, c.config, c.layers)
			m, err := GGUF(g, cfg, GGUFOptions{NoVocab: true, Type: c.typ})
			if err != nil {
				t.Fatal(err)
			}
			md := metadataOf(m.Metadata)
			if md["general.architecture"] != c.arch {
				t.Errorf("architecture %v", md["general.architecture"])
			}
			for k, want := range c.keys {
				if md[k] != want {
					t.Errorf("%s = %v (%T), want %v", k, md[k], md[k], want)
				}
			}
			ts := tensorsByName(m)
			for _, n := range c.names {
				if ts[n] == nil {
					t.Errorf("no %s", n)
				}
			}
			for name, x := range ts {
				if strings.Contains(name, "ffn_gate_inp") && x.Type != gguf.TypeF32 {
					t.Errorf("router %s is %v, want F32", name, x.Type)
				}
			}
			// blk.0.ffn_gate_exps holds expert e's gate at e's place,
			// encoded as the 2-D tensor alone would be.
			stack := ts["blk.0.ffn_gate_exps.weight"]
			w0, ok := g.Tensor("model.layers.0." + arch.MoEExpert(c.block, 0) + c.gate + ".weight")
			if !ok {
				t.Fatal("no expert 0")
			}
			rows, cols := uint64(w0.Shape[0]), uint64(w0.Shape[1])
			if stack == nil {
				t.Fatal("no blk.0.ffn_gate_exps.weight")
			}
			n := uint64(md[c.arch+".expert_count"].(uint32))
			if !slices.Equal(stack.Dims, []uint64{cols, rows, n}) {
				t.Fatalf("ffn_gate_exps dims %v, want %v", stack.Dims, []uint64{cols, rows, n})
			}
			all, err := stack.Data.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			size, _ := gguf.ByteSize(stack.Type, stack.Dims)
			if int64(len(all)) != size {
				t.Fatalf("%d bytes, want %d", len(all), size)
			}
			per := len(all) / int(n)
			for e := 0; e < int(n); e++ {
				w, ok := g.Tensor("model.layers.0." + arch.MoEExpert(c.block, e) + c.gate + ".weight")
				if !ok {
					t.Fatalf("no expert %d", e)
				}
				one, err := ggufTensor(w, "x", stack.Type, 0, 0, 1)
				if err != nil {
					t.Fatal(err)
				}
				b, err := one.Data.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				if string(all[e*per:(e+1)*per]) != string(b) {
					t.Errorf("expert %d's place in ffn_gate_exps differs from its matrix", e)
				}
			}
			experts := 0
			for _, x := range m.Report.Tensors {
				if x.Expert != nil {
					experts++
					if want := "." + strconv.Itoa(*x.Expert) + "."; !strings.Contains(x.Name, want) {
						t.Errorf("%s reported as expert %d", x.Name, *x.Expert)
					}
				}
			}
			if want := 3 * int(n) * int(md[c.arch+".block_count"].(uint32)); experts != want {
				t.Errorf("%d expert matrices reported, want %d", experts, want)
			}
		})
	}
}

// TestGGUFRefusesWhatLlamaCppFixes: what llama.cpp's graphs for these
// families cannot compute is refused, naming it.
func TestGGUFRefusesWhatLlamaCppFixes(t *testing.T) {
	for name, c := range map[string]struct {
		fixture string
		config  map[string]any
		msg     string
	}{
		"phi3 window":             {"phi3-st", nil, "sliding-window attention (window 9"},
		"mixtral window":          {"mixtral-st", nil, "sliding-window attention (window 5"},
		"qwen2moe dense layer":    {"qwen2moe-st", nil, "layer 1 has a dense MLP"},
		"qwen2moe sparse step":    {"qwen2moe-f16-st", map[string]any{"norm_topk_prob": false}, "layer 0 has a dense MLP"},
		"qwen2moe renormalised":   {"qwen2moe-st", map[string]any{"mlp_only_layers": []int{}, "norm_topk_prob": true}, "leaves unnormalised"},
		"qwen3moe unnormalised":   {"qwen3moe-bf16-st", nil, "always renormalises"},
		"qwen3moe dense layer":    {"qwen3moe-st", nil, "layer 0 has a dense MLP"},
		"qwen3moe attention bias": {"qwen3moe-bf16-st", map[string]any{"norm_topk_prob": true, "attention_bias": true}, "attention output bias"},
		"qwen3moe window": {"qwen3moe-bf16-st", map[string]any{"norm_topk_prob": true, "use_sliding_window": true, "sliding_window": 4},
			"sliding-window attention (window 4"},
	} {
		g, cfg := fixtureGraph(t, c.fixture, c.config, nil)
		_, err := GGUF(g, cfg, GGUFOptions{NoVocab: true, Type: "f16"})
		if !errors.Is(err, ErrGGUFUnsupported) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v (want %q)", name, err, c.msg)
		}
	}
}

// TestGGUFPhi3Name: llama.cpp looks Phi-3's special tokens up in the
// vocabulary of a model whose general.name says phi3, and aborts loading
// without one; such a name is refused with such a vocabulary.
func TestGGUFPhi3Name(t *testing.T) {
	spm := []string{"<unk>", "<s>", "</s>", "a"}
	if err := ggufPhi3Name("microsoft/Phi-3-mini-4k-instruct", spm); !errors.Is(err, ErrGGUFVocab) || !strings.Contains(err.Error(), "<|endoftext|>") {
		t.Errorf("Phi-3 name without <|endoftext|>: %v", err)
	}
	if err := ggufPhi3Name("tiny-phi3", []string{"<s>"}); !errors.Is(err, ErrGGUFVocab) || !strings.Contains(err.Error(), "</s>") {
		t.Errorf("phi3 name without </s>: %v", err)
	}
	if err := ggufPhi3Name("Phi-3-mini", append(spm, "<|endoftext|>")); err != nil {
		t.Errorf("Phi-3 name with its tokens: %v", err)
	}
	if err := ggufPhi3Name("Phi-4-mini-instruct", spm); err != nil {
		t.Errorf("Phi-4 name: %v", err)
	}
	// Through GGUF: llama-tiny-st's vocabulary (with byte tokens) has no
	// <|endoftext|>.
	g, cfg := fixtureGraph(t, "llama-tiny-st", map[string]any{"vocab_size": 512}, nil)
	_, err := GGUF(g, cfg, GGUFOptions{TokenizerDir: byteFallbackDir(t, true, 256), Name: "my-phi3-llama", Type: "f16"})
	if !errors.Is(err, ErrGGUFVocab) || !strings.Contains(err.Error(), "phi3") {
		t.Errorf("GGUF named phi3: %v", err)
	}
}
