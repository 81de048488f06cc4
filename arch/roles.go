package arch

import (
	"strings"

	"github.com/hubmirror/hubmirror/weights"
)

// Role classifies a tensor for the conversion, quantization and pruning
// passes, which treat embeddings, norms, biases, output heads and the
// matrices of Linear layers differently.
type Role string

// The roles a tensor can have.
const (
	RoleLinear    Role = "linear"    // the 2-D weight of a Linear (or GPT-2 Conv1D) layer in the model body
	RoleEmbedding Role = "embedding" // token, position and token-type embedding tables
	RoleHead      Role = "head"      // output heads: lm_head, classifiers, BERT's prediction head
	RoleNorm      Role = "norm"      // LayerNorm and RMSNorm weights and biases
	RoleBias      Role = "bias"      // biases of Linear layers
	RoleBuffer    Role = "buffer"    // non-parameter buffers (position_ids, causal masks)
	RoleRouter    Role = "router"    // MoE routers and gates: their logits choose experts, so they stay float
	RoleExperts   Role = "experts"   // transformers 5's fused MoE experts: 3-D stacks of expert Linear weights (FusedExpertSlices)
	RoleOther     Role = "other"     // anything else (integer tensors, unknown shapes)
)

// headPrefixes are the output heads transformers' task models of every
// family put at the top level.
var headPrefixes = []string{"lm_head.", "classifier.", "score.", "qa_outputs."}

// RoleOf classifies the named tensor: buffers and integer tensors first,
// then by the names of the config's family and of the other families (a
// lone weight file has no config), then by the rules all families share:
// output heads, norms, embeddings, biases, and the 2-D weights of Linear
// layers. cfg may be nil.
func RoleOf(cfg *Config, t *weights.Tensor) Role {
	name := t.Name
	switch {
	case IsBuffer(name):
		return RoleBuffer
	case !t.DType.IsFloat():
		return RoleOther
	}
	fams := families
	if cfg != nil && cfg.family != nil {
		fams = append([]*Family{cfg.family}, families...)
	}
	for _, f := range fams {
		if f.Role == nil {
			continue
		}
		if r, ok := f.Role(name); ok {
			return r
		}
	}
	if hasPart(name, headPrefixes...) {
		return RoleHead
	}
	lower := strings.ToLower(name)
	switch {
	case strings.Contains(lower, "norm"):
		return RoleNorm
	case strings.Contains(lower, "embed"):
		return RoleEmbedding
	case strings.HasSuffix(name, ".bias"):
		return RoleBias
	case strings.HasSuffix(name, ".weight") && len(t.Shape) == 2:
		return RoleLinear
	}
	return RoleOther
}

// hasPart reports whether name starts with one of the dotted prefixes, or
// has it after a dot.
func hasPart(name string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) || strings.Contains(name, "."+p) {
			return true
		}
	}
	return false
}

// IsBuffer reports whether a tensor name is one of the non-parameter buffers
// that transformers checkpoints carry (position_ids, GPT-2's causal mask,
// rotary frequencies): a Buffers entry of any family.
func IsBuffer(name string) bool {
	for _, f := range families {
		for _, s := range f.Buffers {
			if name == s || strings.HasSuffix(name, "."+s) {
				return true
			}
		}
	}
	return false
}

// IsConv1D reports whether a Linear weight is stored in GPT-2's Conv1D
// layout, [in, out], rather than nn.Linear's [out, in]. cfg may be nil.
func IsConv1D(cfg *Config, name string) bool {
	return cfg != nil && cfg.Params != nil && cfg.Params.Conv1D(name)
}

// LinearDims returns the output and input sizes of a Linear weight, taking
// the Conv1D layout into account.
func LinearDims(cfg *Config, t *weights.Tensor) (out, in int64) {
	if IsConv1D(cfg, t.Name) {
		return t.Shape[1], t.Shape[0]
	}
	return t.Shape[0], t.Shape[1]
}
