package quantize

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/weights"
)

// ggufMix chooses the type of each matrix for the llama-quantize file
// types (q4_0, q4_k_m, q5_k_m, q6_k) as llama.cpp's src/llama-quant.cpp
// does without an importance matrix or overrides (llama_tensor_get_type):
//
//   - output.weight, or token_embd.weight when there is no output.weight
//     (tied embeddings), is Q6_K, or Q8_0 when its rows are not a multiple
//     of the file type's block; token_embd otherwise keeps the file type.
//   - attn_v (and a fused attn_qkv) in Q4_K_M and Q5_K_M: Q6_K for the
//     layers of use_more_bits (the first and last eighth of the attn_v
//     tensors, and every third one between); Q8_0 with 8 experts; a
//     70B Llama's Q4_K attn_v is Q5_K.
//   - attn_k with 8 experts: Q8_0; attn_output with 8 experts in Q4_K_M:
//     Q5_K.
//   - ffn_down in Q4_K_M and Q5_K_M: Q6_K for the layers of use_more_bits.
//   - Everything else: the file type's type.
//
// A chosen type whose block does not divide the rows falls back as
// llama.cpp's tensor_type_fallback: Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to
// Q8_0, and then to F16 if the rows are not a multiple of 32 either; Q4_0
// and Q8_0 rows that are not a multiple of 32 are refused (llama.cpp has
// no fallback for them). Tensors llama-quantize does not quantize (the
// expert router ffn_gate_inp) are F32, as llama.cpp's converter writes
// them.
type ggufMix struct {
	ftype   string
	def     gguf.Type
	nLayer  int
	nExpert int
	is70B   bool
	// hasOutput: the file has output.weight (the head is not tied).
	hasOutput bool
	// attnV is the rank of each attn_v-like tensor in llama.cpp's order
	// (layer, then name) and nAttnV their number.
	attnV  map[string]int
	nAttnV int
	// ffnDown is the rank of each ffn_down tensor (the layer's index when
	// there are no experts: llama.cpp counts them).
	ffnDown map[string]int
}

// isAttnV is llama-quant.cpp's category_is_attn_v.
func isAttnV(name string) bool {
	return strings.Contains(name, "attn_qkv.weight") || strings.Contains(name, "attn_kv_b.weight") || strings.Contains(name, "attn_v.weight")
}

// ggufLayer returns N of a name "blk.N....", or -1.
func ggufLayer(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	num, _, ok := strings.Cut(rest, ".")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return n
}

// newGGUFMix returns the mix of file type ftype (default type def) for a
// file of the GGUF tensor names given, nLayer blocks and nExpert experts
// (0 or 1 without).
func newGGUFMix(ftype string, def gguf.Type, names []string, nLayer, nExpert int, is70B bool) *ggufMix {
	m := &ggufMix{ftype: ftype, def: def, nLayer: nLayer, nExpert: nExpert, is70B: is70B, attnV: map[string]int{}, ffnDown: map[string]int{}}
	sorted := append([]string(nil), names...)
	sort.SliceStable(sorted, func(i, j int) bool { // llama_model_loader's weight_name_comparer
		a, b := ggufLayer(sorted[i]), ggufLayer(sorted[j])
		if a != b {
			return a < b
		}
		return sorted[i] < sorted[j]
	})
	nDown := 0
	for _, n := range sorted {
		if n == "output.weight" {
			m.hasOutput = true
		}
		if n == "output.weight" || n == "token_embd.weight" || !strings.HasSuffix(n, "weight") || strings.Contains(n, "ffn_gate_inp.weight") {
			continue
		}
		switch {
		case isAttnV(n):
			m.attnV[n] = m.nAttnV
			m.nAttnV++
		case strings.Contains(n, "attn_k.weight"), strings.Contains(n, "attn_q.weight"), strings.Contains(n, "attn_output.weight"),
			strings.Contains(n, "ffn_up"), strings.Contains(n, "ffn_gate"):
		case strings.Contains(n, "ffn_down"):
			m.ffnDown[n] = nDown
			nDown++
		}
	}
	return m
}

// useMoreBits is llama-quant.cpp's use_more_bits.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// typeOf returns the type of the tensor gname with ne0 values per row
// (dims is the number of dimensions).
func (m *ggufMix) typeOf(gname string, dims int, ne0 int64) (gguf.Type, error) {
	if dims < 2 || !strings.HasSuffix(gname, "weight") || strings.Contains(gname, "_norm.weight") || strings.Contains(gname, "ffn_gate_inp.weight") {
		return gguf.TypeF32, nil
	}
	t := m.def
	kquant := m.ftype == "q4_k_m" || m.ftype == "q5_k_m"
	switch {
	case gname == "output.weight" || (!m.hasOutput && gname == "token_embd.weight"):
		if ne0%int64(gguf.BlockLen(m.def)) != 0 {
			t = gguf.TypeQ8_0
		} else if t != gguf.TypeQ8_0 {
			t = gguf.TypeQ6_K
		}
	case gname == "token_embd.weight":
	case isAttnV(gname):
		if kquant && useMoreBits(m.attnV[gname], m.nAttnV) {
			t = gguf.TypeQ6_K
		}
		if m.is70B && t == gguf.TypeQ4_K {
			t = gguf.TypeQ5_K
		}
		if m.nExpert == 8 {
			t = gguf.TypeQ8_0
		}
	case strings.Contains(gname, "attn_k.weight"):
		if m.nExpert == 8 {
			t = gguf.TypeQ8_0
		}
	case strings.Contains(gname, "attn_q.weight"):
	case strings.Contains(gname, "attn_output.weight"):
		if m.nExpert == 8 && m.ftype == "q4_k_m" {
			t = gguf.TypeQ5_K
		}
	case strings.Contains(gname, "ffn_up"), strings.Contains(gname, "ffn_gate"):
	case strings.Contains(gname, "ffn_down"):
		i, n := m.ffnDown[gname], m.nLayer
		if m.nExpert > 1 {
			i = ggufLayer(gname)
			if i < 0 || i >= n {
				return 0, fmt.Errorf("%w: %s: no layer below %d in the name", ErrGGUFUnsupported, gname, n)
			}
		}
		if kquant && useMoreBits(i, n) {
			t = gguf.TypeQ6_K
		}
	}
	if ne0%int64(gguf.BlockLen(t)) == 0 {
		return t, nil
	}
	fallback := map[gguf.Type]gguf.Type{gguf.TypeQ4_K: gguf.TypeQ5_0, gguf.TypeQ5_K: gguf.TypeQ5_1, gguf.TypeQ6_K: gguf.TypeQ8_0}
	f, ok := fallback[t]
	if !ok {
		return 0, fmt.Errorf("%w: %s: rows of %d values do not split into %v blocks of %d, and llama-quantize has no fallback for %v", ErrGGUFUnsupported, gname, ne0, t, gguf.BlockLen(t), t)
	}
	if ne0%int64(gguf.BlockLen(f)) != 0 {
		f = gguf.TypeF16
	}
	return f, nil
}

// ggufNames returns the GGUF names of the tensors of g that GGUF writes:
// not buffers, not a head tied to the embeddings, not names the family's
// layout does not know (GGUF refuses those).
func ggufNames(g *weights.Graph, fam *ggufFamily, tied bool, embed *weights.Tensor) []string {
	var names []string
	for _, t := range g.Tensors() {
		if arch.IsBuffer(t.Name) {
			continue
		}
		if t.Name == "lm_head.weight" && embed != nil && (tied || (t.Storage != "" && t.Storage == embed.Storage)) {
			continue
		}
		if n, ok := fam.ggufName(t.Name); ok {
			names = append(names, n)
		}
	}
	return names
}

// ggufExperts returns the number of experts of a mixture-of-experts
// config (num_local_experts, num_experts), 0 for a dense model.
func ggufExperts(cfg *arch.Config) int {
	for _, k := range []string{"num_local_experts", "num_experts"} {
		var n int
		if raw, ok := cfg.Raw[k]; ok && json.Unmarshal(raw, &n) == nil && n > 0 {
			return n
		}
	}
	return 0
}
