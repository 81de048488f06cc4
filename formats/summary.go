package formats

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// TensorInfo describes one tensor for reports.
type TensorInfo struct {
	Name  string        `json:"name"`
	DType weights.DType `json:"dtype"`
	Shape []int64       `json:"shape"`
}

// Summary is what `hubmirror inspect` reports about a model.
type Summary struct {
	Architecture string `json:"architecture"`
	ModelType    string `json:"model_type,omitempty"`
	// Family is the forward-pass family (bert, distilbert, gemma, gpt2,
	// llama, mixtral, modernbert, mpnet, qwen2_moe, qwen3, qwen3_moe, roberta) or "".
	Family string `json:"family,omitempty"`
	// Parameters counts the elements of the floating-point tensors, each
	// storage once (tied weights count once), without the buffers that
	// transformers registers as non-parameters (see arch.IsBuffer): the
	// figure transformers' num_parameters() gives. An int8 weight of the
	// compressed-tensors layout (what `hubmirror quantize --scheme int8`
	// writes) counts as the weight it replaces, and its scale and zero
	// point do not count: a quantized model has the parameters of its
	// original.
	Parameters int64 `json:"parameters"`
	// Elements counts the elements of every tensor, buffers and tied names
	// included.
	Elements int64 `json:"elements"`
	// Bytes is the size of the data of every distinct storage region.
	Bytes   int64        `json:"bytes"`
	Tensors []TensorInfo `json:"tensors"`
	// Tied lists groups of names that share one storage.
	Tied [][]string `json:"tied"`
	// ConfigTied lists weights that the file omits because config.json ties
	// them to another (tie_word_embeddings): "lm_head.weight=model.embed_tokens.weight".
	ConfigTied []string `json:"config_tied,omitempty"`
	Globals    []string `json:"pickle_globals"`
	Files      []string `json:"files"`
	// Quantization lists the schemes of the quantized matrices (int8,
	// w4a16 with its group size and symmetry, fp8); none when empty.
	Quantization []QuantGroup `json:"quantization,omitempty"`
}

// Summarize describes g. cfg may be nil.
func Summarize(g *weights.Graph, cfg *arch.Config) *Summary {
	s := &Summary{Architecture: "unknown", Tied: g.TiedGroups(), Globals: g.Globals, Files: g.Files}
	if s.Tied == nil {
		s.Tied = [][]string{}
	}
	if s.Globals == nil {
		s.Globals = []string{}
	}
	if cfg != nil {
		s.Architecture, s.ModelType, s.Family = cfg.Architecture(), cfg.ModelType, cfg.Family()
	}
	type region struct {
		storage string
		offset  int64
		bytes   int64
	}
	seen := map[region]bool{}
	tiedHead := configTiedHead(g, cfg)
	for _, t := range g.Tensors() {
		s.Tensors = append(s.Tensors, TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape})
		n := t.NumElements()
		s.Elements += n
		r := region{t.Storage, t.StorageOffset, t.NumBytes()}
		if t.Storage != "" && seen[r] {
			continue
		}
		seen[r] = true
		s.Bytes += t.NumBytes()
		if pn, ok := parameterElements(g, t); ok && t.Name != tiedHead {
			s.Parameters += pn
		}
	}
	if cfg != nil {
		s.ConfigTied = configTied(g, cfg)
	}
	s.Quantization = Quantization(g)
	return s
}

// isParameter reports whether t holds parameters of the model: a float
// tensor that is not a buffer, or an int8 weight with its scale beside it,
// but not the scale or zero point of such a weight.
//
// A pack-quantized int4 weight ("weight_packed") counts as the weight it
// replaces (out·in elements), an F8_E4M3 weight as itself; their scales,
// zero points and weight_shape do not count.
func isParameter(g *weights.Graph, t *weights.Tensor) bool {
	if t.DType == weights.I8 {
		return strings.HasSuffix(t.Name, ".weight") && hasTensor(g, t.Name+"_scale")
	}
	if !t.DType.IsFloat() || arch.IsBuffer(t.Name) {
		return false
	}
	for _, aux := range []string{"_scale", "_zero_point"} {
		if w, ok := strings.CutSuffix(t.Name, aux); ok && strings.HasSuffix(w, ".weight") {
			if wt, ok := g.Tensor(w); ok && (wt.DType == weights.I8 || wt.DType == weights.F8E4M3) {
				return false
			}
			if hasTensor(g, w+"_packed") {
				return false
			}
		}
	}
	return true
}

// parameterElements is the number of parameters t holds when isParameter
// or a packed int4 weight: its elements, or for weight_packed the elements
// of the weight it replaces.
func parameterElements(g *weights.Graph, t *weights.Tensor) (int64, bool) {
	if q, ok := quantizedWeight(g, t); ok && q.Scheme == "w4a16" {
		out, in := t.Shape[0], t.Shape[1]*8
		if st, ok := g.Tensor(strings.TrimSuffix(t.Name, "_packed") + "_shape"); ok {
			if b, err := st.Bytes(); err == nil && st.DType == weights.I64 && len(b) == 16 {
				out, in = int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:]))
			}
		}
		return out * in, true
	}
	return t.NumElements(), isParameter(g, t)
}

func hasTensor(g *weights.Graph, name string) bool {
	_, ok := g.Tensor(name)
	return ok
}

// configTiedHead returns the name of an output head that the file holds
// as a copy of its own although config.json ties it to the token
// embedding (a tied pickle written as safetensors without deduplication):
// transformers ties it on load, so its elements are no parameters of
// their own. "" when there is none.
func configTiedHead(g *weights.Graph, cfg *arch.Config) string {
	head, emb := tiedNames(cfg)
	if head == "" {
		return ""
	}
	h, ok := g.Tensor(head)
	if !ok {
		return ""
	}
	for _, p := range cfg.Params.Layout().Prefixes {
		if e, ok := g.Tensor(p + emb); ok && slices.Equal(e.Shape, h.Shape) {
			return head
		}
	}
	return ""
}

// tiedNames returns the output head and the token embedding (relative to
// the base model) of a causal or masked LM whose config ties them; "" when
// it does not.
func tiedNames(cfg *arch.Config) (head, embedding string) {
	if cfg == nil || cfg.Params == nil || !cfg.Params.Sizes().TieWordEmbeddings {
		return "", ""
	}
	l := cfg.Params.Layout()
	a := cfg.Architecture()
	if l.LMHead == "" || !(strings.HasSuffix(a, "LMHeadModel") || strings.HasSuffix(a, "ForCausalLM") || strings.HasSuffix(a, "ForMaskedLM")) {
		return "", ""
	}
	return l.LMHead, l.Embedding
}

// configTied names the output embedding that a tie_word_embeddings config
// shares with the input embedding when the file leaves it out.
func configTied(g *weights.Graph, cfg *arch.Config) []string {
	head, emb := tiedNames(cfg)
	if head == "" || hasTensor(g, head) {
		return nil
	}
	for _, p := range cfg.Params.Layout().Prefixes {
		if hasTensor(g, p+emb) {
			return []string{head + "=" + p + emb}
		}
	}
	return nil
}
