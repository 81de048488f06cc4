// Package arch holds what hubmirror knows about model architectures: how a
// family's config.json reads and which values it refuses, how its
// checkpoints name their tensors, and the role each tensor plays for the
// conversion, quantization and pruning passes.
//
// Each family lives in a file of its own (bert.go, distilbert.go, gemma.go,
// gpt2.go, llama.go, mixtral.go, modernbert.go, mpnet.go, phi3.go, qwen2moe.go,
// qwen3.go, qwen3moe.go, roberta.go; moe.go holds what the MoE families share) that
// registers a Family (the model types and class names that select it, its
// buffers, the roles of its own tensor names, a parser that checks its
// config.json) and defines its Params: sizes, where its checkpoints keep
// their tensors, its Conv1D layers, the heads and FFN neurons structured
// pruning cuts, and the tensor names the forward pass looks up. The
// passes, inspect and validation use only Family and Params, so adding a
// family means adding such a file here and its forward-pass file in
// forward, which registers the family's network.
package arch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrConfig reports a config.json that cannot be used.
var ErrConfig = errors.New("arch: invalid config")

// Family is one model family: the config.json model types and transformers
// classes it covers, and how their configs read.
type Family struct {
	// Name is the family's name: "bert", "distilbert", "gemma", "gpt2",
	// "llama", "mixtral", "modernbert", "mpnet", "phi3", "qwen2_moe", "qwen3", "qwen3_moe", "roberta".
	Name string
	// ModelTypes are the config.json model_type values of the family.
	ModelTypes []string
	// ClassPrefixes select the family for a config without a model_type
	// by the names in its "architectures" ("Bert" for BertModel, ...).
	ClassPrefixes []string
	// Buffers are the name suffixes (after a dot, or the whole name) of the
	// non-parameter buffers the family's transformers models register and
	// checkpoints may carry (see IsBuffer).
	Buffers []string
	// Role, when set, classifies the tensors the family names in its own
	// way (ok false leaves a name to the rules every family shares; see
	// RoleOf). It sees float tensors that are not buffers.
	Role func(name string) (r Role, ok bool)
	// Parse reads the family's fields of config.json into its Params,
	// filling transformers' defaults, and refuses impossible values with
	// an error wrapping ErrConfig that names the field. c holds the
	// generic fields already.
	Parse func(c *Config, raw []byte) (Params, error)
}

// Params is a family's typed view of config.json.
type Params interface {
	// Sizes returns the dimensions every family has.
	Sizes() Sizes
	// Layout says where the family's checkpoints keep their tensors.
	Layout() Layout
	// Blocks describes the attention heads and FFN neurons of the layers,
	// for structured pruning.
	Blocks() Blocks
	// Conv1D reports whether the named Linear weight is stored [in, out]
	// (GPT-2's Conv1D) rather than nn.Linear's [out, in].
	Conv1D(name string) bool
}

// Sizes are the dimensions of a model.
type Sizes struct {
	VocabSize, HiddenSize, Layers int
	// Heads, KVHeads (grouped-query attention; Heads without it) and
	// HeadDim describe the attention of every layer before pruning.
	Heads, KVHeads, HeadDim int
	// Intermediate is the width of the feed-forward layers.
	Intermediate int
	// MaxPositions is the number of positions the model was built for
	// (max_position_embeddings, n_positions).
	MaxPositions int
	// TieWordEmbeddings: a causal LM's output head is its token embedding.
	TieWordEmbeddings bool
}

// Layout says where a family's checkpoints keep their tensors. Names are
// relative to the base model unless said otherwise.
type Layout struct {
	// Prefixes are the base model's prefixes in checkpoints, in the order
	// they are tried: the bare model's tensors carry none, the task
	// models' one ("bert.", "transformer.", "model.").
	Prefixes []string
	// Embedding is the token embedding table, which every checkpoint of
	// the family has: finding it finds the prefix.
	Embedding string
	// LMHead is the output head of a causal LM, or the decoder of a masked
	// LM (an absolute name), "" for a family without one.
	LMHead string
	// Layer returns the prefix of layer i's tensors ("encoder.layer.3.").
	Layer func(i int) string
}

// Slice is one tensor of a layer that structured pruning cuts along one
// axis. Part numbers the blocks of a fused tensor (GPT-2's c_attn holds q,
// k and v side by side): units of part p start after p blocks of all the
// units present.
type Slice struct {
	Name string // relative to the layer's prefix, with .weight or .bias
	Axis int
	Part int
}

// Blocks describes the attention heads and FFN neurons of a family's
// layers: what structured pruning cuts.
type Blocks struct {
	Layers, Heads, KVHeads, HeadDim, Hidden, Intermediate int
	// PerLayerHeads reports that config.json's pruned_heads can give each
	// layer its own head count (BERT, GPT-2); otherwise every layer has
	// Heads, and the fields below say where the counts are written.
	PerLayerHeads bool
	// HeadsField, KVHeadsField and HeadDimField are the config fields of
	// a family with one head count for all layers.
	HeadsField, KVHeadsField, HeadDimField string
	// IntermediateField is the config field of the FFN width.
	IntermediateField string
	// NoHeadPruning, when set, says why the family's config cannot
	// describe layers with fewer heads: structured head pruning refuses
	// it with this reason.
	NoHeadPruning string
	// Query and KV cut heads (rows or columns of the projections); Out
	// cuts the inputs of the attention's output projection.
	Query, KV, Out []Slice
	// Up cuts FFN neurons on the input side, Down on the output side.
	Up, Down []Slice
	// FFNGroups, when set, replace Up, Down and IntermediateField: the FFN
	// neurons of a family whose layers hold several kinds of MLP (the MoE
	// families: routed experts, a shared expert, dense MLPs), each kind
	// with its width in a config field of its own.
	FFNGroups []FFNGroup
}

var families []*Family

// register adds a family; each family's file calls it from init.
func register(f *Family) {
	if f.Name == "" || f.Parse == nil {
		panic("arch: register: a family needs a name and a parser")
	}
	for _, g := range families {
		if g.Name == f.Name {
			panic("arch: register: family " + f.Name + " registered twice")
		}
	}
	families = append(families, f)
	slices.SortFunc(families, func(a, b *Family) int { return strings.Compare(a.Name, b.Name) })
}

// Families lists the registered families, by name.
func Families() []*Family { return slices.Clone(families) }

// Config is a model's config.json: the fields every architecture has, the
// whole document, and, for the families hubmirror knows, the family's
// typed view (Params; see the accessors Bert, GPT2, Llama).
type Config struct {
	ModelType     string
	Architectures []string
	// TorchDType is the "torch_dtype" (or "dtype") field, "" when absent.
	TorchDType string
	// Raw holds every top-level field as written.
	Raw map[string]json.RawMessage
	// Params is the family's view, nil for a family hubmirror does not know.
	Params Params

	family *Family
}

// Family names the model family ("bert", "roberta", "llama", ...), or "" for a
// config of a family hubmirror does not know.
func (c *Config) Family() string {
	if c == nil || c.family == nil {
		return ""
	}
	return c.family.Name
}

// OfFamily reports whether a transformers class name (BertModel,
// MistralForCausalLM) belongs to the config's family.
func (c *Config) OfFamily(class string) bool {
	if c == nil || c.family == nil {
		return false
	}
	for _, p := range c.family.ClassPrefixes {
		if strings.HasPrefix(class, p) {
			return true
		}
	}
	return false
}

// Architecture is the first entry of "architectures", or the model type.
func (c *Config) Architecture() string {
	if len(c.Architectures) > 0 {
		return c.Architectures[0]
	}
	return c.ModelType
}

// ParseConfig parses config.json. Unknown architectures give a Config with
// only the generic fields; a known family with missing, inconsistent or
// impossible values is an error wrapping ErrConfig.
func ParseConfig(raw []byte) (*Config, error) {
	c := &Config{}
	if err := json.Unmarshal(raw, &c.Raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.Raw == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrConfig)
	}
	var generic struct {
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
		TorchDType    string   `json:"torch_dtype"`
		DType         string   `json:"dtype"`
	}
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.ModelType, c.Architectures, c.TorchDType = generic.ModelType, generic.Architectures, generic.TorchDType
	if c.TorchDType == "" {
		c.TorchDType = generic.DType
	}
	f := familyOf(c)
	if f == nil {
		return c, nil
	}
	p, err := f.Parse(c, raw)
	if err != nil {
		return nil, err
	}
	c.Params, c.family = p, f
	return c, nil
}

// familyOf finds the family of model_type or, without one, of the first
// architecture name a family claims.
func familyOf(c *Config) *Family {
	if c.ModelType != "" {
		for _, f := range families {
			if slices.Contains(f.ModelTypes, c.ModelType) {
				return f
			}
		}
		return nil
	}
	for _, a := range c.Architectures {
		for _, f := range families {
			for _, p := range f.ClassPrefixes {
				if strings.HasPrefix(a, p) {
					return f
				}
			}
		}
	}
	return nil
}

// PrunedHeads returns config.json's pruned_heads (layer -> original head
// numbers removed), which BERT and GPT-2 configs carry when heads were
// pruned: transformers builds those layers with fewer heads. Empty when
// absent.
func (c *Config) PrunedHeads() (map[int][]int, error) {
	out := map[int][]int{}
	raw, ok := c.Raw["pruned_heads"]
	if !ok {
		return out, nil
	}
	var m map[string][]int
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: pruned_heads: %v", ErrConfig, err)
	}
	for k, v := range m {
		l, err := strconv.Atoi(k)
		if err != nil || l < 0 {
			return nil, fmt.Errorf("%w: pruned_heads: layer %q", ErrConfig, k)
		}
		seen := map[int]bool{}
		for _, h := range v {
			if h < 0 || seen[h] {
				return nil, fmt.Errorf("%w: pruned_heads: layer %d: head %d", ErrConfig, l, h)
			}
			seen[h] = true
		}
		out[l] = v
	}
	return out, nil
}

// UpdateConfig returns config.json with the given top-level fields set (a nil
// value removes the field), keeping every other field as it was. Keys are
// written sorted, as json.Marshal writes maps.
func UpdateConfig(raw []byte, fields map[string]any) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	for k, v := range fields {
		if v == nil {
			delete(doc, k)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		doc[k] = b
	}
	return json.MarshalIndent(doc, "", "  ")
}

// numLabels is the size of a classification head: num_labels, or the
// length of id2label; 0 when the config names none.
func numLabels(raw map[string]json.RawMessage) int {
	var n int
	if v, ok := raw["num_labels"]; ok && json.Unmarshal(v, &n) == nil && n > 0 {
		return n
	}
	var m map[string]any
	if v, ok := raw["id2label"]; ok && json.Unmarshal(v, &m) == nil {
		return len(m)
	}
	return 0
}

// checker collects the first impossible value of a family's config.
type checker struct {
	family string
	err    error
}

func (k *checker) fail(format string, args ...any) {
	if k.err == nil {
		k.err = fmt.Errorf("%w: %s: %s", ErrConfig, k.family, fmt.Sprintf(format, args...))
	}
}

// positive requires a size to be at least 1.
func (k *checker) positive(field string, v int) {
	if v <= 0 {
		k.fail("%s must be positive, got %d", field, v)
	}
}

// nonNegative requires a count that may be 0.
func (k *checker) nonNegative(field string, v int) {
	if v < 0 {
		k.fail("%s must not be negative, got %d", field, v)
	}
}

// positiveFloat requires a finite value above 0.
func (k *checker) positiveFloat(field string, v float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		k.fail("%s must be a positive finite number, got %v", field, v)
	}
}

// divides requires whole to be a multiple of part (both checked positive
// before; a zero part is left to that check).
func (k *checker) divides(wholeField string, whole int, partField string, part int) {
	if part > 0 && whole > 0 && whole%part != 0 {
		k.fail("%s %d is not a multiple of %s %d", wholeField, whole, partField, part)
	}
}

// Limits of the sizes a config may give. No checkpoint comes near them;
// they keep an absurd config from costing memory before its tensors are
// looked at.
const (
	maxSize   = math.MaxInt32
	maxLayers = 1 << 16
)

// size requires a positive size within maxSize.
func (k *checker) size(field string, v int) {
	k.positive(field, v)
	if v > maxSize {
		k.fail("%s %d is larger than any model's (at most %d)", field, v, maxSize)
	}
}

// layers requires a positive layer count within maxLayers.
func (k *checker) layers(field string, v int) {
	k.positive(field, v)
	if v > maxLayers {
		k.fail("%s %d is larger than any model's (at most %d)", field, v, maxLayers)
	}
}

// present reports whether config.json sets field to a non-null value.
func present(raw map[string]json.RawMessage, field string) bool {
	v, ok := raw[field]
	return ok && string(v) != "null"
}
