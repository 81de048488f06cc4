// Package quantize holds the quantization passes: fp16 and bf16 casts, and
// weight-only symmetric int8 with a scale per output channel or per group of
// inputs, written in the compressed-tensors "int-quantized" layout that
// loaders of that format (transformers' compressed-tensors integration,
// vLLM) read: an int8 `weight`, a `weight_scale` of shape [out, 1] or
// [out, in/group] in the model's dtype, and a `quantization_config` in
// config.json.
//
// Which tensors are quantized follows one rule (see Plan): the 2-D weights
// of the Linear layers of the model body (arch.RoleLinear). Embeddings,
// norms, biases, buffers and output heads (lm_head, classifiers) stay in
// float, because they are small or because errors there reach the output
// directly. Options.Keep and Options.Include change the rule by name.
// transformers 5's fused MoE experts (3-D tensors, arch.RoleExperts) stay
// float under every scheme: compressed-tensors describes quantized Linear
// modules (a `weight` and its `weight_scale`), which they are not.
package quantize

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gobwas/glob"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/weights"
)

// Scheme is a quantization scheme.
type Scheme string

// The schemes of `hubmirror quantize --scheme`.
const (
	Int8 Scheme = "int8"
	FP16 Scheme = "fp16"
	BF16 Scheme = "bf16"
	// W4A16 is int4 weights in groups (compressed-tensors pack-quantized).
	W4A16 Scheme = "w4a16"
	// FP8 is F8_E4M3 weights with per-channel scales and dynamic per-token
	// fp8 activations (compressed-tensors float-quantized, FP8_DYNAMIC).
	FP8 Scheme = "fp8"
)

// DefaultInt4GroupSize is the group size of W4A16 when none is given.
const DefaultInt4GroupSize = 128

// ErrNothingToQuantize is returned by Quantize when the scheme would change
// no tensor: the model is already in the target form (an int8 model, an f16
// model cast to fp16), or Keep keeps every tensor the rule would change. Its
// result would only be the source under a new name.
var ErrNothingToQuantize = errors.New("quantize: nothing to quantize")

// ParseScheme checks a scheme name.
func ParseScheme(s string) (Scheme, error) {
	switch Scheme(s) {
	case Int8, FP16, BF16, W4A16, FP8:
		return Scheme(s), nil
	}
	return "", fmt.Errorf("quantize: unknown scheme %q (int8, w4a16, fp8, fp16, bf16)", s)
}

// Options configure a quantization pass.
type Options struct {
	Scheme Scheme
	// GroupSize is the number of inputs that share one int8 or int4 scale;
	// 0 means one scale per output channel. For int8 every quantized
	// layer's input size must be a multiple of it; for w4a16 the last group
	// of a row may be shorter. FP8 takes none.
	GroupSize int
	// Asym (w4a16 only) gives each group a zero point as well as a scale.
	Asym bool
	// Keep lists glob patterns (fnmatch style, * matches dots) of tensor
	// names that stay in float although the rule would quantize them.
	Keep []string
	// Include lists patterns of 2-D weights quantized although the rule
	// keeps them in float (for example "lm_head.weight").
	Include []string
	// Threads is the number of goroutines that quantize one int8 tensor;
	// 0 means runtime.GOMAXPROCS(0).
	Threads int
}

// Change records one tensor the pass changed.
type Change struct {
	Name  string        `json:"name"`
	From  weights.DType `json:"from"`
	To    weights.DType `json:"to"`
	Shape []int64       `json:"shape"`
	// Scale names the int8 scale tensor.
	Scale string `json:"scale,omitempty"`
	// Overflows counts values beyond the range of an fp16/bf16 target.
	Overflows int64 `json:"overflows,omitempty"`
}

// Kept records a float tensor the pass left as it was, and why.
type Kept struct {
	Name string    `json:"name"`
	Role arch.Role `json:"role"`
}

// Report says what a quantization pass did.
type Report struct {
	Scheme    Scheme   `json:"scheme"`
	GroupSize int      `json:"group_size,omitempty"`
	Changed   []Change `json:"changed"`
	Kept      []Kept   `json:"kept"`
	// InputBytes and OutputBytes are the data sizes before and after.
	InputBytes  int64 `json:"input_bytes"`
	OutputBytes int64 `json:"output_bytes"`
	// Ignored lists the module names (weight names without ".weight") of
	// Linear-shaped tensors kept in float, for quantization_config.ignore.
	Ignored []string `json:"-"`
}

// planner decides which tensors the int8 scheme quantizes.
type planner struct {
	cfg           *arch.Config
	keep, include []glob.Glob
}

func compile(patterns []string) ([]glob.Glob, error) {
	var out []glob.Glob
	for _, p := range patterns {
		g, err := glob.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("quantize: bad pattern %q: %w", p, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func matchAny(gs []glob.Glob, s string) bool {
	for _, g := range gs {
		if g.Match(s) {
			return true
		}
	}
	return false
}

// quantized reports whether t is quantized to int8.
func (p *planner) quantized(t *weights.Tensor) bool {
	if !t.DType.IsFloat() || len(t.Shape) != 2 || matchAny(p.keep, t.Name) {
		return false
	}
	if matchAny(p.include, t.Name) {
		return true
	}
	return arch.RoleOf(p.cfg, t) == arch.RoleLinear
}

// Quantize applies the scheme to g. cfg is g's parsed config (nil for a
// lone weight file). The returned Graph computes its tensors lazily from
// g's, so g must stay open while it is used; its Config is g's config.json
// with the changes the scheme implies (torch_dtype, quantization_config).
func Quantize(g *weights.Graph, cfg *arch.Config, opts Options) (*weights.Graph, *Report, error) {
	if _, err := ParseScheme(string(opts.Scheme)); err != nil {
		return nil, nil, err
	}
	keep, err := compile(opts.Keep)
	if err != nil {
		return nil, nil, err
	}
	include, err := compile(opts.Include)
	if err != nil {
		return nil, nil, err
	}
	p := &planner{cfg: cfg, keep: keep, include: include}
	rep := &Report{Scheme: opts.Scheme, GroupSize: opts.GroupSize, Changed: []Change{}, Kept: []Kept{}, InputBytes: g.NumBytes()}
	var out *weights.Graph
	switch opts.Scheme {
	case FP16, BF16:
		to := weights.F16
		if opts.Scheme == BF16 {
			to = weights.BF16
		}
		keepFn := func(t *weights.Tensor) bool { return matchAny(keep, t.Name) || arch.IsBuffer(t.Name) }
		var crep *convert.CastReport
		out, crep, err = convert.Cast(g, to, keepFn)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range crep.Changed {
			t, _ := g.Tensor(c.Name)
			rep.Changed = append(rep.Changed, Change{Name: c.Name, From: c.From, To: c.To, Shape: t.Shape, Overflows: c.Overflows})
		}
		for _, t := range g.Tensors() {
			if t.DType.IsFloat() && t.DType != to && keepFn(t) {
				rep.Kept = append(rep.Kept, Kept{Name: t.Name, Role: arch.RoleOf(cfg, t)})
			}
		}
		if out.Config != nil {
			if out.Config, err = arch.UpdateConfig(out.Config, map[string]any{"torch_dtype": torchDTypeName(to)}); err != nil {
				return nil, nil, err
			}
		}
	case Int8, W4A16, FP8:
		if opts.GroupSize < 0 {
			return nil, nil, fmt.Errorf("quantize: negative group size %d", opts.GroupSize)
		}
		if opts.Asym && opts.Scheme != W4A16 {
			return nil, nil, fmt.Errorf("quantize: asymmetric quantization is for the w4a16 scheme only")
		}
		if opts.GroupSize > 0 && opts.Scheme == FP8 {
			return nil, nil, fmt.Errorf("quantize: the fp8 scheme has per-channel scales, no group size")
		}
		out = g.Derive()
		for _, t := range g.Tensors() {
			if !p.quantized(t) {
				if err := out.Add(t); err != nil {
					return nil, nil, err
				}
				if t.DType.IsFloat() && !arch.IsBuffer(t.Name) {
					rep.Kept = append(rep.Kept, Kept{Name: t.Name, Role: arch.RoleOf(cfg, t)})
					// Linear modules left in float (heads, --keep); embedding
					// tables are not Linear modules and need no entry.
					role := arch.RoleOf(cfg, t)
					if len(t.Shape) == 2 && strings.HasSuffix(t.Name, ".weight") && role != arch.RoleEmbedding {
						rep.Ignored = append(rep.Ignored, strings.TrimSuffix(t.Name, ".weight"))
					}
				}
				continue
			}
			var ts []*weights.Tensor
			to := weights.I8
			switch opts.Scheme {
			case Int8:
				q, scale, err := int8Tensors(t, cfg, opts.GroupSize, opts.Threads)
				if err != nil {
					return nil, nil, err
				}
				ts = []*weights.Tensor{q, scale}
			case W4A16:
				if ts, err = int4Tensors(t, cfg, opts.GroupSize, opts.Asym); err != nil {
					return nil, nil, err
				}
				to = weights.I32
			case FP8:
				if ts, err = fp8Tensors(t, cfg); err != nil {
					return nil, nil, err
				}
				to = weights.F8E4M3
			}
			for _, q := range ts {
				if err := out.Add(q); err != nil {
					return nil, nil, fmt.Errorf("quantize: %s: %w", t.Name, err)
				}
			}
			rep.Changed = append(rep.Changed, Change{Name: t.Name, From: t.DType, To: to, Shape: t.Shape, Scale: strings.TrimSuffix(t.Name, ".weight") + ".weight_scale"})
		}
		if out.Config != nil {
			var qc map[string]any
			switch opts.Scheme {
			case Int8:
				qc = CompressedTensorsConfig(opts.GroupSize, rep.Ignored)
			case W4A16:
				qc = PackQuantizedConfig(opts.GroupSize, opts.Asym, rep.Ignored)
			case FP8:
				qc = FloatQuantizedConfig(rep.Ignored)
			}
			if out.Config, err = arch.UpdateConfig(out.Config, map[string]any{"quantization_config": qc}); err != nil {
				return nil, nil, err
			}
		}
	}
	if len(rep.Changed) == 0 {
		return nil, nil, fmt.Errorf("%w: scheme %s would change no tensor of the model (it is already quantized, "+
			"or keep patterns keep every tensor the scheme converts)", ErrNothingToQuantize, opts.Scheme)
	}
	rep.OutputBytes = out.NumBytes()
	return out, rep, nil
}

// linearDims checks that t is a float .weight tensor the quantizers can
// take and returns its Linear dimensions (out, in), whatever its layout
// (a Conv1D weight is stored [in][out]).
func linearDims(t *weights.Tensor, cfg *arch.Config) (out, in int, err error) {
	switch t.DType {
	case weights.F32, weights.F16, weights.BF16:
	default:
		return 0, 0, fmt.Errorf("quantize: %s: cannot quantize %v weights", t.Name, t.DType)
	}
	if !strings.HasSuffix(t.Name, ".weight") {
		return 0, 0, fmt.Errorf("quantize: %s: not a .weight tensor", t.Name)
	}
	o, i := arch.LinearDims(cfg, t)
	if int64(int(o)) != o || int64(int(i)) != i {
		return 0, 0, fmt.Errorf("quantize: %s: shape %v too large", t.Name, t.Shape)
	}
	return int(o), int(i), nil
}

// int8Tensors returns the lazily quantized int8 weight and its scale
// tensor, which share one int8Job.
func int8Tensors(t *weights.Tensor, cfg *arch.Config, groupSize, threads int) (q, scale *weights.Tensor, err error) {
	out, in, err := linearDims(t, cfg)
	if err != nil {
		return nil, nil, err
	}
	if groupSize > 0 && in%groupSize != 0 {
		return nil, nil, fmt.Errorf("quantize: %s: input size %d is not a multiple of group size %d", t.Name, in, groupSize)
	}
	groups := int64(groupsOf(in, groupSize))
	job := &int8Job{src: t, out: out, in: in, inMajor: arch.IsConv1D(cfg, t.Name), groupSize: groupSize,
		scaleType: t.DType, threads: threads}
	q = &weights.Tensor{Name: t.Name, DType: weights.I8, Shape: append([]int64(nil), t.Shape...), File: t.File,
		Data: weights.SourceFunc(func() ([]byte, error) {
			b, err := job.quantized()
			if err != nil {
				return nil, fmt.Errorf("quantize %s: %w", t.Name, err)
			}
			return b, nil
		})}
	scale = &weights.Tensor{Name: strings.TrimSuffix(t.Name, ".weight") + ".weight_scale", DType: job.scaleType, Shape: []int64{int64(out), groups},
		Data: weights.SourceFunc(func() ([]byte, error) {
			s, err := job.scaleValues()
			if err != nil {
				return nil, fmt.Errorf("quantize %s: %w", t.Name, err)
			}
			return encodeScales(s, job.scaleType)
		})}
	return q, scale, nil
}

// CompressedTensorsConfig returns the quantization_config that
// compressed-tensors writes for weight-only symmetric int8 ("W8A16") in the
// int-quantized format. ignore names the Linear modules left in float.
func CompressedTensorsConfig(groupSize int, ignore []string) map[string]any {
	strategy := "channel"
	var gs any
	if groupSize > 0 {
		strategy, gs = "group", groupSize
	}
	return compressedTensorsConfig("int-quantized", quantArgs(8, "int", true, strategy, gs, false, "minmax"), nil, "", ignore)
}

// quantArgs are compressed-tensors' QuantizationArgs of a group's weights
// or activations.
func quantArgs(bits int, typ string, symmetric bool, strategy string, groupSize any, dynamic bool, observer any) map[string]any {
	return map[string]any{
		"num_bits": bits, "type": typ, "symmetric": symmetric, "strategy": strategy,
		"group_size": groupSize, "dynamic": dynamic, "observer": observer, "actorder": nil, "block_structure": nil,
	}
}

// compressedTensorsConfig is the quantization_config compressed-tensors
// writes for one config group targeting every Linear: format names the
// compressor, weights and inputs are the group's quantization args (inputs
// nil for weight-only schemes), groupFormat is the group's own format key
// ("" leaves it out, as int-quantized configs do), ignore names the Linear
// modules left in float.
func compressedTensorsConfig(format string, weights, inputs map[string]any, groupFormat string, ignore []string) map[string]any {
	if ignore == nil {
		ignore = []string{}
	}
	group := map[string]any{
		"targets":            []string{"Linear"},
		"weights":            weights,
		"input_activations":  nil,
		"output_activations": nil,
	}
	if inputs != nil {
		group["input_activations"] = inputs
	}
	if groupFormat != "" {
		group["format"] = groupFormat
	}
	return map[string]any{
		"quant_method":             "compressed-tensors",
		"format":                   format,
		"quantization_status":      "compressed",
		"config_groups":            map[string]any{"group_0": group},
		"ignore":                   ignore,
		"kv_cache_scheme":          nil,
		"global_compression_ratio": nil,
	}
}

// torchDTypeName is the torch_dtype spelling of a dtype in config.json.
func torchDTypeName(d weights.DType) string {
	switch d {
	case weights.F16:
		return "float16"
	case weights.BF16:
		return "bfloat16"
	}
	return "float32"
}
