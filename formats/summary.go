package formats

import (
	"strings"

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
	// Family is the forward-pass family (bert, gpt2, llama) or "".
	Family string `json:"family,omitempty"`
	// Parameters counts the elements of the floating-point tensors, each
	// storage once (tied weights count once), without the buffers that
	// transformers registers as non-parameters (see IsBuffer): the figure
	// transformers' num_parameters() gives.
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
}

// bufferSuffixes are tensors that transformers models register as buffers,
// not parameters.
var bufferSuffixes = []string{"position_ids", "attn.bias", "attn.masked_bias", "rotary_emb.inv_freq", "token_type_ids"}

// IsBuffer reports whether a tensor name is one of the non-parameter buffers
// that transformers checkpoints carry (position_ids, GPT-2's causal mask,
// rotary frequencies).
func IsBuffer(name string) bool {
	for _, s := range bufferSuffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// Summarize describes g. cfg may be nil.
func Summarize(g *weights.Graph, cfg *Config) *Summary {
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
		if t.DType.IsFloat() && !IsBuffer(t.Name) {
			s.Parameters += n
		}
	}
	if cfg != nil {
		s.ConfigTied = configTied(g, cfg)
	}
	return s
}

// configTied names the output embedding that a tie_word_embeddings config
// shares with the input embedding when the file leaves it out.
func configTied(g *weights.Graph, cfg *Config) []string {
	tie := false
	switch {
	case cfg.Llama != nil:
		tie = cfg.Llama.TieWordEmbeddings
	case cfg.GPT2 != nil:
		tie = cfg.GPT2.TieWordEmbeddings
	}
	arch := cfg.Architecture()
	if !tie || !(strings.HasSuffix(arch, "LMHeadModel") || strings.HasSuffix(arch, "ForCausalLM")) {
		return nil
	}
	if _, ok := g.Tensor("lm_head.weight"); ok {
		return nil
	}
	for _, emb := range []string{"model.embed_tokens.weight", "transformer.wte.weight", "wte.weight", "embed_tokens.weight"} {
		if _, ok := g.Tensor(emb); ok {
			return []string{"lm_head.weight=" + emb}
		}
	}
	return nil
}
