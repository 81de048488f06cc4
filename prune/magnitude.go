// Package prune holds the pruning passes: unstructured magnitude pruning
// (per tensor or with one global threshold), N:M semi-structured sparsity,
// and structured pruning that really shrinks tensors: attention heads and
// FFN neurons, with config.json updated so that the result loads as an
// ordinary model where the architecture allows. Like every pass, each maps a
// Graph to a new Graph whose tensors compute their data lazily, tensor by
// tensor, and returns a report: the sparsity reached per tensor, and the
// shapes it changed.
//
// Unstructured and N:M pruning apply to the 2-D weights of the Linear layers
// of the model body (arch.RoleLinear) and to transformers 5's fused MoE
// experts (arch.RoleExperts), matrix by matrix of the per-expert layout;
// embeddings, norms, biases and heads are left alone.
package prune

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// ErrSpec matches every error about a pruning request that is malformed or
// that the model cannot take: a sparsity or pattern out of range, a layer
// or head the model does not have, all heads of a layer. errors.Is(err,
// ErrSpec) tells such a request from a model the pass cannot read.
var ErrSpec = errors.New("prune: invalid pruning request")

// specError is an error about the request: its text is the message alone,
// and it matches ErrSpec.
type specError struct{ msg string }

func (e *specError) Error() string        { return e.msg }
func (e *specError) Is(target error) bool { return target == ErrSpec }

// specErrorf returns an error that matches ErrSpec.
func specErrorf(format string, args ...any) error {
	return &specError{fmt.Sprintf(format, args...)}
}

// TensorReport is the sparsity of one tensor after pruning.
type TensorReport struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Zeros    int64   `json:"zeros"`
	Elements int64   `json:"elements"`
	Sparsity float64 `json:"sparsity"`
	// OldShape is set when structured pruning shrank the tensor.
	OldShape []int64 `json:"old_shape,omitempty"`
}

// Report says what a pruning pass did.
type Report struct {
	Method  string         `json:"method"`
	Tensors []TensorReport `json:"tensors"`
	// Sparsity is the fraction of zeros over the pruned tensors together.
	Sparsity float64 `json:"sparsity"`
	// Config lists the config.json fields the pass changed.
	Config map[string]any `json:"config,omitempty"`
}

func (r *Report) add(tr TensorReport) {
	if tr.Elements > 0 {
		tr.Sparsity = float64(tr.Zeros) / float64(tr.Elements)
	}
	r.Tensors = append(r.Tensors, tr)
	var z, n int64
	for _, t := range r.Tensors {
		z += t.Zeros
		n += t.Elements
	}
	if n > 0 {
		r.Sparsity = float64(z) / float64(n)
	}
}

// targets returns the tensors unstructured and N:M pruning apply to.
func targets(g *weights.Graph, cfg *arch.Config) map[string]bool {
	out := map[string]bool{}
	for _, t := range g.Tensors() {
		switch arch.RoleOf(cfg, t) {
		case arch.RoleLinear:
			out[t.Name] = true
		case arch.RoleExperts:
			_, _, _, ok := arch.FusedExpertSlices(t.Name, t.Shape)
			out[t.Name] = ok
		}
	}
	return out
}

// matrices returns how a target tensor splits into the Linear weights that
// are pruned each on its own: n matrices of out×in one after the other
// (the experts' gate, up and down of a fused experts tensor), or one.
func matrices(cfg *arch.Config, t *weights.Tensor) (n int, out, in int64) {
	if n, out, in, ok := arch.FusedExpertSlices(t.Name, t.Shape); ok && arch.RoleOf(cfg, t) == arch.RoleExperts {
		return n, out, in
	}
	out, in = arch.LinearDims(cfg, t)
	return 1, out, in
}

// values decodes a float tensor into f32.
func values(t *weights.Tensor) ([]float32, error) { return t.Float32s() }

// encode writes vals back in t's dtype; zeros stay exact zeros in every
// float format.
func encode(vals []float32, d weights.DType) ([]byte, error) {
	b := make([]byte, len(vals)*d.Size())
	return b, weights.EncodeFloat32(b, vals, d)
}

// magnitudeBits is |v| as float32 bits: for non-negative floats the bit
// patterns order like the values, which lets the global threshold be found
// with integer histograms. NaN sorts last.
func magnitudeBits(v float32) uint32 { return math.Float32bits(v) &^ (1 << 31) }

// threshold is a cut in magnitude order: every element with magnitude bits
// below bits is pruned, and of those equal to bits, the first ties (in
// tensor order, then element order) are pruned too.
type threshold struct {
	bits uint32
	ties int64
}

// applyThresholds applies ths[k] to the k-th of len(ths) equal parts of
// vals and returns the zeros in vals.
func applyThresholds(vals []float32, ths []threshold) (zeros int64) {
	size := len(vals) / len(ths)
	for k, th := range ths {
		z, _ := applyThreshold(vals[k*size:(k+1)*size], th)
		zeros += z
	}
	return zeros
}

// applyThreshold zeroes, in vals, the elements below the threshold and the
// first ties elements equal to it; it returns the number of ties it used.
func applyThreshold(vals []float32, th threshold) (zeros, tiesUsed int64) {
	for i, v := range vals {
		b := magnitudeBits(v)
		switch {
		case b < th.bits:
			vals[i] = 0
		case b == th.bits && tiesUsed < th.ties:
			vals[i] = 0
			tiesUsed++
		}
		if vals[i] == 0 {
			zeros++
		}
	}
	return zeros, tiesUsed
}

// kthThreshold returns the threshold that prunes exactly k of vals (the k
// smallest magnitudes, ties broken by position).
func kthThreshold(vals []float32, k int64) threshold {
	if k <= 0 {
		return threshold{bits: 0, ties: 0}
	}
	if k >= int64(len(vals)) {
		return threshold{bits: math.MaxUint32, ties: 0}
	}
	bits := make([]uint32, len(vals))
	for i, v := range vals {
		bits[i] = magnitudeBits(v)
	}
	slices.Sort(bits)
	t := bits[k-1] // the largest magnitude that is pruned
	below := int64(0)
	for _, b := range bits {
		if b < t {
			below++
		} else {
			break
		}
	}
	return threshold{bits: t, ties: k - below}
}

// Magnitude zeroes the fraction sparsity of the smallest-magnitude weights
// of every Linear weight: in each tensor separately (each matrix of a fused
// experts tensor separately, as in the per-expert layout), or, with
// global, under one threshold across all of them (found exactly, in two streaming passes
// of 16-bit histograms, without holding more than one tensor).
func Magnitude(g *weights.Graph, cfg *arch.Config, sparsity float64, global bool) (*weights.Graph, *Report, error) {
	if !(sparsity >= 0 && sparsity < 1) {
		return nil, nil, specErrorf("prune: sparsity %g is not in [0, 1)", sparsity)
	}
	tg := targets(g, cfg)
	method := fmt.Sprintf("magnitude %.4g per tensor", sparsity)
	ths := map[string]threshold{}
	if global {
		method = fmt.Sprintf("magnitude %.4g global", sparsity)
		var err error
		if ths, err = globalThresholds(g, tg, sparsity); err != nil {
			return nil, nil, err
		}
	}
	rep := &Report{Method: method}
	out := g.Derive()
	for _, t := range g.Tensors() {
		if !tg[t.Name] {
			if err := out.Add(t); err != nil {
				return nil, nil, err
			}
			continue
		}
		vals, err := values(t)
		if err != nil {
			return nil, nil, err
		}
		per := []threshold{ths[t.Name]}
		if !global {
			n, _, _ := matrices(cfg, t)
			per = make([]threshold, n)
			size := len(vals) / n
			for k := range per {
				per[k] = kthThreshold(vals[k*size:(k+1)*size], int64(math.Floor(sparsity*float64(size))))
			}
		}
		zeros := applyThresholds(vals, per)
		rep.add(TensorReport{Name: t.Name, Shape: t.Shape, Zeros: zeros, Elements: int64(len(vals))})
		if err := out.Add(lazyMasked(t, per)); err != nil {
			return nil, nil, err
		}
	}
	return out, rep, nil
}

// lazyMasked returns t with the thresholds (of equal parts of it) applied
// when its data is read.
func lazyMasked(t *weights.Tensor, ths []threshold) *weights.Tensor {
	out := *t
	out.Storage, out.StorageOffset = "", 0
	out.Data = weights.SourceFunc(func() ([]byte, error) {
		vals, err := values(t)
		if err != nil {
			return nil, err
		}
		applyThresholds(vals, ths)
		return encode(vals, t.DType)
	})
	return &out
}

// globalThresholds finds the magnitude below which the fraction sparsity of
// all target elements lies, and turns it into per-tensor thresholds with
// their share of the ties. Pass one histograms the high 16 bits of every
// magnitude, pass two the low 16 bits within the bucket that holds the cut.
func globalThresholds(g *weights.Graph, tg map[string]bool, sparsity float64) (map[string]threshold, error) {
	// each calls fn with the values of every target tensor, one at a time.
	each := func(fn func(t *weights.Tensor, vals []float32)) error {
		for _, t := range g.Tensors() {
			if !tg[t.Name] {
				continue
			}
			vals, err := values(t)
			if err != nil {
				return err
			}
			fn(t, vals)
		}
		return nil
	}
	var total int64
	hi := make([]int64, 1<<16)
	if err := each(func(_ *weights.Tensor, vals []float32) {
		for _, v := range vals {
			hi[magnitudeBits(v)>>16]++
		}
		total += int64(len(vals))
	}); err != nil {
		return nil, err
	}
	k := int64(math.Floor(sparsity * float64(total)))
	out := map[string]threshold{}
	if k == 0 {
		for name := range tg {
			out[name] = threshold{}
		}
		return out, nil
	}
	// The k-th smallest lies in bucket b.
	var below int64
	b := 0
	for ; b < len(hi); b++ {
		if below+hi[b] >= k {
			break
		}
		below += hi[b]
	}
	lo := make([]int64, 1<<16)
	if err := each(func(_ *weights.Tensor, vals []float32) {
		for _, v := range vals {
			if m := magnitudeBits(v); int(m>>16) == b {
				lo[m&0xffff]++
			}
		}
	}); err != nil {
		return nil, err
	}
	l := 0
	for ; l < len(lo); l++ {
		if below+lo[l] >= k {
			break
		}
		below += lo[l]
	}
	cut := uint32(b)<<16 | uint32(l)
	ties := k - below // elements equal to cut that are pruned, in tensor order
	err := each(func(t *weights.Tensor, vals []float32) {
		var eq int64
		for _, v := range vals {
			if magnitudeBits(v) == cut {
				eq++
			}
		}
		use := min(eq, ties)
		ties -= use
		out[t.Name] = threshold{bits: cut, ties: use}
	})
	return out, err
}

// NM keeps the n largest magnitudes of every m consecutive inputs of each
// output channel of every Linear weight (2:4 sparsity for n=2, m=4), the
// pattern sparse tensor cores accelerate. Inputs run along the rows of
// nn.Linear weights (and of each expert's matrices in a fused experts
// tensor) and down the columns of GPT-2's Conv1D ones.
func NM(g *weights.Graph, cfg *arch.Config, n, m int) (*weights.Graph, *Report, error) {
	if n <= 0 || m <= 0 || n >= m {
		return nil, nil, specErrorf("prune: pattern %d:%d must keep N of M with 0 < N < M", n, m)
	}
	tg := targets(g, cfg)
	rep := &Report{Method: fmt.Sprintf("%d:%d", n, m)}
	out := g.Derive()
	for _, t := range g.Tensors() {
		if !tg[t.Name] {
			if err := out.Add(t); err != nil {
				return nil, nil, err
			}
			continue
		}
		k, outDim, inDim := matrices(cfg, t)
		outDim *= int64(k)
		if inDim%int64(m) != 0 {
			return nil, nil, specErrorf("prune: %s: input size %d is not a multiple of %d", t.Name, inDim, m)
		}
		conv := arch.IsConv1D(cfg, t.Name)
		apply := func(vals []float32) int64 {
			return nmApply(vals, int(outDim), int(inDim), conv, n, m)
		}
		vals, err := values(t)
		if err != nil {
			return nil, nil, err
		}
		zeros := apply(vals)
		rep.add(TensorReport{Name: t.Name, Shape: t.Shape, Zeros: zeros, Elements: int64(len(vals))})
		x := *t
		x.Storage, x.StorageOffset = "", 0
		x.Data = weights.SourceFunc(func() ([]byte, error) {
			vals, err := values(t)
			if err != nil {
				return nil, err
			}
			apply(vals)
			return encode(vals, t.DType)
		})
		if err := out.Add(&x); err != nil {
			return nil, nil, err
		}
	}
	return out, rep, nil
}

// nmApply zeroes all but the n largest magnitudes in each group of m
// inputs (ties keep the earlier input) and returns the zeros in vals.
func nmApply(vals []float32, outDim, inDim int, conv bool, n, m int) int64 {
	idx := func(o, i int) int {
		if conv {
			return i*outDim + o
		}
		return o*inDim + i
	}
	order := make([]int, m)
	for o := 0; o < outDim; o++ {
		for g0 := 0; g0 < inDim; g0 += m {
			for j := range order {
				order[j] = j
			}
			// Stable sort by descending magnitude: the first n survive.
			slices.SortStableFunc(order, func(a, b int) int {
				va := math.Abs(float64(vals[idx(o, g0+a)]))
				vb := math.Abs(float64(vals[idx(o, g0+b)]))
				switch {
				case va > vb:
					return -1
				case va < vb:
					return 1
				}
				return 0
			})
			for _, j := range order[n:] {
				vals[idx(o, g0+j)] = 0
			}
		}
	}
	var z int64
	for _, v := range vals {
		if v == 0 {
			z++
		}
	}
	return z
}
