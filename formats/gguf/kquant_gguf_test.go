package gguf_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// TestGGUFKQuantMixes writes a Llama model whose rows are multiples of 256
// with each of llama-quantize's file types and checks the type of every
// tensor against llama-quant.cpp's rules (4 layers: use_more_bits picks
// layers 2 and 3) and that its bytes are Encode of the rows.
func TestGGUFKQuantMixes(t *testing.T) {
	s := llamaShape{hidden: 256, inter: 256, layers: 4, heads: 4, kvHeads: 2, vocab: 40, dtype: weights.F32}
	g, cfg := llamaGraph(t, s, "")
	for _, c := range []struct {
		scheme       string
		fileType     uint32
		base, more   gguf.Type
		output, embd gguf.Type
	}{
		{"q4_k_m", 15, gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeQ6_K, gguf.TypeQ4_K},
		{"q5_k_m", 17, gguf.TypeQ5_K, gguf.TypeQ6_K, gguf.TypeQ6_K, gguf.TypeQ5_K},
		{"q6_k", 18, gguf.TypeQ6_K, gguf.TypeQ6_K, gguf.TypeQ6_K, gguf.TypeQ6_K},
		{"q4_0", 2, gguf.TypeQ4_0, gguf.TypeQ4_0, gguf.TypeQ6_K, gguf.TypeQ4_0},
	} {
		t.Run(c.scheme, func(t *testing.T) {
			f, m := writeGGUF(t, g, cfg, quantize.GGUFOptions{Type: c.scheme, Threads: 2, NoVocab: true})
			if v, _ := f.Get("general.file_type"); v != c.fileType {
				t.Errorf("general.file_type %v, want %d", v, c.fileType)
			}
			for _, rt := range m.Report.Tensors {
				ft, _ := f.Tensor(rt.GGUF)
				src, _ := g.Tensor(rt.Name)
				want := c.base
				switch {
				case len(src.Shape) == 1:
					want = gguf.TypeF32
				case rt.GGUF == "output.weight":
					want = c.output
				case rt.GGUF == "token_embd.weight":
					want = c.embd
				case strings.HasSuffix(rt.GGUF, ".attn_v.weight"), strings.HasSuffix(rt.GGUF, ".ffn_down.weight"):
					if strings.HasPrefix(rt.GGUF, "blk.2.") || strings.HasPrefix(rt.GGUF, "blk.3.") {
						want = c.more
					}
				}
				if ft.Type != want || rt.To != want.String() {
					t.Errorf("%s: %v (reported %s), want %v", rt.GGUF, ft.Type, rt.To, want)
				}
				if len(src.Shape) != 2 {
					continue
				}
				heads := 0
				switch {
				case strings.Contains(rt.GGUF, ".attn_q."):
					heads = s.heads
				case strings.Contains(rt.GGUF, ".attn_k."):
					heads = s.kvHeads
				}
				enc := make([]byte, len(ft.Data))
				if err := gguf.Encode(ft.Type, enc, expectedRows(t, src, heads)); err != nil {
					t.Fatal(err)
				}
				if string(enc) != string(ft.Data) {
					t.Errorf("%s: bytes differ from gguf.Encode of the rows", rt.GGUF)
				}
			}
		})
	}
}

// TestGGUFKQuantFallbacks: rows that are not a multiple of 256 fall back
// as llama-quantize's tensor_type_fallback (Q4_K to Q5_0, Q5_K to Q5_1,
// Q6_K to Q8_0, then F16 for rows not a multiple of 32); the head is Q8_0
// when its rows do not split into the file type's blocks; Q4_0 and Q8_0
// rows that are not a multiple of 32 are refused (llama-quantize has no
// fallback for them).
func TestGGUFKQuantFallbacks(t *testing.T) {
	s := llamaShape{hidden: 64, inter: 96, layers: 8, heads: 4, kvHeads: 2, vocab: 40, dtype: weights.F32}
	g, cfg := llamaGraph(t, s, "")
	for scheme, want := range map[string]map[string]gguf.Type{
		// 8 layers: use_more_bits is layers 0, 3, 6 and 7.
		"q4_k_m": {"token_embd.weight": gguf.TypeQ5_0, "output.weight": gguf.TypeQ8_0, "blk.1.attn_q.weight": gguf.TypeQ5_0,
			"blk.0.attn_v.weight": gguf.TypeQ8_0, "blk.1.attn_v.weight": gguf.TypeQ5_0, "blk.6.attn_v.weight": gguf.TypeQ8_0,
			"blk.3.ffn_down.weight": gguf.TypeQ8_0, "blk.4.ffn_down.weight": gguf.TypeQ5_0, "blk.4.ffn_up.weight": gguf.TypeQ5_0},
		"q5_k_m": {"blk.1.attn_q.weight": gguf.TypeQ5_1, "blk.7.ffn_down.weight": gguf.TypeQ8_0, "blk.5.ffn_down.weight": gguf.TypeQ5_1},
		"q6_k":   {"blk.1.attn_q.weight": gguf.TypeQ8_0, "output.weight": gguf.TypeQ8_0},
	} {
		t.Run(scheme, func(t *testing.T) {
			f, _ := writeGGUF(t, g, cfg, quantize.GGUFOptions{Type: scheme, Threads: 1, NoVocab: true})
			for name, typ := range want {
				ft, ok := f.Tensor(name)
				if !ok {
					t.Fatalf("no %s", name)
				}
				if ft.Type != typ {
					t.Errorf("%s: %v, want %v", name, ft.Type, typ)
				}
			}
		})
	}
	s48 := llamaShape{hidden: 48, inter: 64, layers: 1, heads: 4, kvHeads: 1, vocab: 20, dtype: weights.F32}
	g48, cfg48 := llamaGraph(t, s48, "")
	// The head of rows of 48 would be Q8_0, which has no fallback:
	// llama-quantize stops there, as GGUF does.
	_, err := quantize.GGUF(g48, cfg48, quantize.GGUFOptions{Type: "q4_k_m", NoVocab: true})
	if !errors.Is(err, quantize.ErrGGUFUnsupported) || !strings.Contains(err.Error(), "output.weight") {
		t.Errorf("q4_k_m of rows of 48: %v", err)
	}
	_, err = quantize.GGUF(g48, cfg48, quantize.GGUFOptions{Type: "q4_0", NoVocab: true})
	if !errors.Is(err, quantize.ErrGGUFUnsupported) || !strings.Contains(err.Error(), "no fallback") {
		t.Errorf("q4_0 of rows of 48: %v", err)
	}
}
