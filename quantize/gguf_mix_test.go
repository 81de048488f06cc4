package quantize

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/formats/gguf"
)

func layerNames(layers int, perLayer ...string) []string {
	names := []string{"token_embd.weight", "output_norm.weight"}
	for i := 0; i < layers; i++ {
		for _, p := range perLayer {
			names = append(names, fmt.Sprintf("blk.%d.%s", i, p))
		}
	}
	return names
}

// TestGGUFMixLayers checks use_more_bits over 32 layers counted in
// llama.cpp's order (by layer number, not by name: blk.10 after blk.9):
// Q4_K_M's attn_v and ffn_down are Q6_K in layers 0-3, 28-31 and every
// third from 6 (what llama-quantize prints for a 32-layer Llama).
func TestGGUFMixLayers(t *testing.T) {
	names := append(layerNames(32, "attn_q.weight", "attn_v.weight", "ffn_down.weight", "attn_norm.weight"), "output.weight")
	m := newGGUFMix("q4_k_m", gguf.TypeQ4_K, names, 32, 0, false)
	want := []int{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}
	for i := 0; i < 32; i++ {
		for _, n := range []string{"attn_v.weight", "ffn_down.weight", "attn_q.weight"} {
			typ, err := m.typeOf(fmt.Sprintf("blk.%d.%s", i, n), 2, 4096)
			if err != nil {
				t.Fatal(err)
			}
			w := gguf.TypeQ4_K
			if n != "attn_q.weight" && slices.Contains(want, i) {
				w = gguf.TypeQ6_K
			}
			if typ != w {
				t.Errorf("layer %d %s: %v, want %v", i, n, typ, w)
			}
		}
	}
	for name, w := range map[string]gguf.Type{"output.weight": gguf.TypeQ6_K, "token_embd.weight": gguf.TypeQ4_K, "blk.0.attn_norm.weight": gguf.TypeF32} {
		dims := 2
		if name == "blk.0.attn_norm.weight" {
			dims = 1
		}
		if typ, _ := m.typeOf(name, dims, 4096); typ != w {
			t.Errorf("%s: %v, want %v", name, typ, w)
		}
	}
	// Tied embeddings: token_embd is the head.
	tied := newGGUFMix("q4_k_m", gguf.TypeQ4_K, layerNames(2, "attn_v.weight"), 2, 0, false)
	if typ, _ := tied.typeOf("token_embd.weight", 2, 4096); typ != gguf.TypeQ6_K {
		t.Errorf("tied token_embd: %v, want Q6_K", typ)
	}
	// 70B: a Q4_K attn_v is Q5_K.
	big := newGGUFMix("q4_k_m", gguf.TypeQ4_K, names, 32, 0, true)
	if typ, _ := big.typeOf("blk.4.attn_v.weight", 2, 8192); typ != gguf.TypeQ5_K {
		t.Errorf("70B attn_v of layer 4: %v, want Q5_K", typ)
	}
}

// TestGGUFMixExperts: with 8 experts attn_v and attn_k are Q8_0 and
// attn_output Q5_K; ffn_down_exps takes its layer from its name; the
// router stays F32.
func TestGGUFMixExperts(t *testing.T) {
	names := append(layerNames(8, "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_down_exps.weight", "ffn_gate_inp.weight"), "output.weight")
	m := newGGUFMix("q4_k_m", gguf.TypeQ4_K, names, 8, 8, false)
	for name, w := range map[string]gguf.Type{
		"blk.1.attn_v.weight": gguf.TypeQ8_0, "blk.1.attn_k.weight": gguf.TypeQ8_0, "blk.1.attn_output.weight": gguf.TypeQ5_K,
		"blk.3.ffn_down_exps.weight": gguf.TypeQ6_K, "blk.4.ffn_down_exps.weight": gguf.TypeQ4_K, "blk.4.ffn_gate_inp.weight": gguf.TypeF32,
	} {
		if typ, err := m.typeOf(name, 3, 4096); typ != w || err != nil {
			t.Errorf("%s: %v (%v), want %v", name, typ, err, w)
		}
	}
	if _, err := m.typeOf("blk.9.ffn_down_exps.weight", 3, 4096); err == nil {
		t.Error("ffn_down of layer 9 of 8: no error")
	}
}

// TestGGUFMixFallbacks: the fallback chain of tensor_type_fallback.
func TestGGUFMixFallbacks(t *testing.T) {
	names := append(layerNames(1, "attn_q.weight"), "output.weight")
	for _, c := range []struct {
		ftype string
		def   gguf.Type
		ne0   int64
		want  gguf.Type
	}{
		{"q4_k_m", gguf.TypeQ4_K, 96, gguf.TypeQ5_0},
		{"q4_k_m", gguf.TypeQ4_K, 80, gguf.TypeF16},
		{"q5_k_m", gguf.TypeQ5_K, 96, gguf.TypeQ5_1},
		{"q6_k", gguf.TypeQ6_K, 96, gguf.TypeQ8_0},
		{"q6_k", gguf.TypeQ6_K, 512, gguf.TypeQ6_K},
		{"q4_0", gguf.TypeQ4_0, 96, gguf.TypeQ4_0},
	} {
		m := newGGUFMix(c.ftype, c.def, names, 1, 0, false)
		if typ, err := m.typeOf("blk.0.attn_q.weight", 2, c.ne0); typ != c.want || err != nil {
			t.Errorf("%s, rows of %d: %v (%v), want %v", c.ftype, c.ne0, typ, err, c.want)
		}
	}
	m := newGGUFMix("q4_0", gguf.TypeQ4_0, names, 1, 0, false)
	if _, err := m.typeOf("blk.0.attn_q.weight", 2, 80); err == nil {
		t.Error("q4_0 rows of 80: no error")
	}
}

// TestGGUFMixFusedQKV: a fused attn_qkv (Phi-3) counts as attn_v
// (category_is_attn_v): Q6_K in the use_more_bits layers of Q4_K_M.
func TestGGUFMixFusedQKV(t *testing.T) {
	names := append(layerNames(8, "attn_qkv.weight", "ffn_down.weight"), "output.weight")
	m := newGGUFMix("q4_k_m", gguf.TypeQ4_K, names, 8, 0, false)
	for i := 0; i < 8; i++ {
		typ, err := m.typeOf(fmt.Sprintf("blk.%d.attn_qkv.weight", i), 2, 3072)
		w := gguf.TypeQ4_K
		if slices.Contains([]int{0, 3, 6, 7}, i) {
			w = gguf.TypeQ6_K
		}
		if typ != w || err != nil {
			t.Errorf("layer %d attn_qkv: %v (%v), want %v", i, typ, err, w)
		}
	}
}
