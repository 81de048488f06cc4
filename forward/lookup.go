package forward

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// tensorSet finds a model's tensors in a Graph under the names checkpoints of
// its family actually use: with or without the base-model prefix ("bert.",
// "transformer.", "model."), and with the old LayerNorm names gamma/beta. It
// turns them into kernel weights that view the tensors' bytes in place, and
// records which tensors were used so that the rest can be reported.
type tensorSet struct {
	g      *weights.Graph
	prefix string // prefix of the base model's tensors, detected once
	used   map[string]bool
	// matrixElems counts the elements of the matrices used, per dtype.
	matrixElems map[weights.DType]int64
	// quantElems counts the elements of the int4 and fp8 matrices used
	// (fp8 widened to f32 copies, counted as F32 in matrixElems too), and
	// of the int8 ones run as W8A8.
	quantElems map[string]int64
	groupSize  *int                     // configGroupSize, once read
	acts       **formats.ActivationArgs // int8Activations, once read
	// transientW8A8 packs W8A8 weights per product (see w8a8.go).
	transientW8A8 bool
	// ggmlQ8 sets Q8Activations on GGUF matrices (Options.GGMLQ8Activations).
	ggmlQ8 bool
	// names maps each matrix read from a tensor to the tensor's name (for
	// RunCapture's hook).
	names map[*kernels.Weight]string
}

func newTensorSet(g *weights.Graph) *tensorSet {
	return &tensorSet{g: g, used: map[string]bool{}, matrixElems: map[weights.DType]int64{}, quantElems: map[string]int64{},
		names: map[*kernels.Weight]string{}}
}

// detectPrefix sets the base-model prefix: the first of the family's
// prefixes under which its token embedding (a tensor every checkpoint of the
// family has) exists.
func (s *tensorSet) detectPrefix(l arch.Layout) error {
	probe, prefixes := l.Embedding, l.Prefixes
	for _, p := range prefixes {
		if _, ok := s.g.Tensor(p + probe); ok {
			s.prefix = p
			return nil
		}
	}
	tried := make([]string, len(prefixes))
	for i, p := range prefixes {
		tried[i] = quote(p + probe)
	}
	return fmt.Errorf("%w: no tensor %s in the checkpoint", ErrWeights, strings.Join(tried, " or "))
}

// lookup returns the base-model tensor name (without prefix), or, when
// absolute is true, the name as given (heads such as lm_head and classifier
// live outside the base model). For norm parameters the old names gamma and
// beta are tried too.
func (s *tensorSet) lookup(name string, absolute bool) (*weights.Tensor, bool) {
	full := name
	if !absolute {
		full = s.prefix + name
	}
	if t, ok := s.g.Tensor(full); ok {
		return t, true
	}
	if alt, ok := oldNormName(full); ok {
		if t, ok := s.g.Tensor(alt); ok {
			return t, true
		}
	}
	return nil, false
}

// oldNormName maps "...LayerNorm.weight" to "...LayerNorm.gamma" and
// "...LayerNorm.bias" to "...LayerNorm.beta", the names of TensorFlow-era
// BERT checkpoints.
func oldNormName(name string) (string, bool) {
	if !strings.Contains(strings.ToLower(name), "norm") {
		return "", false
	}
	switch {
	case strings.HasSuffix(name, ".weight"):
		return strings.TrimSuffix(name, ".weight") + ".gamma", true
	case strings.HasSuffix(name, ".bias"):
		return strings.TrimSuffix(name, ".bias") + ".beta", true
	}
	return "", false
}

func (s *tensorSet) has(name string, absolute bool) bool {
	_, ok := s.lookup(name, absolute)
	if !ok && strings.HasSuffix(name, ".weight") {
		_, ok = s.lookup(name+"_packed", absolute)
	}
	return ok
}

func (s *tensorSet) fullName(name string, absolute bool) string {
	if absolute {
		return name
	}
	return s.prefix + name
}

// vector returns the 1-D tensor name of length n converted to f32 (a copy:
// norms and biases are small).
func (s *tensorSet) vector(name string, n int, absolute bool) ([]float32, error) {
	t, ok := s.lookup(name, absolute)
	if !ok {
		return nil, fmt.Errorf("%w: missing tensor %s", ErrWeights, quote(s.fullName(name, absolute)))
	}
	return s.toVector(t, n)
}

// optVector is vector for a tensor that may be absent (nil, nil).
func (s *tensorSet) optVector(name string, n int, absolute bool) ([]float32, error) {
	t, ok := s.lookup(name, absolute)
	if !ok {
		return nil, nil
	}
	return s.toVector(t, n)
}

func (s *tensorSet) toVector(t *weights.Tensor, n int) ([]float32, error) {
	if len(t.Shape) != 1 || t.Shape[0] != int64(n) {
		return nil, fmt.Errorf("%w: tensor %s has shape %v, want [%d]", ErrWeights, quote(t.Name), t.Shape, n)
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("%w: tensor %s has dtype %v, want a float type", ErrWeights, quote(t.Name), t.DType)
	}
	v, err := t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWeights, err)
	}
	s.used[t.Name] = true
	return v, nil
}

// matrix returns the weight of a Linear layer, name being the layer's name
// without ".weight", as a kernel weight of logical shape out×in viewing the
// tensor's bytes. conv1d selects GPT-2's Conv1D layout, stored [in][out].
//
// F32, F16 and BF16 tensors are used in place. An I8 tensor needs its
// dequantization scales in "<name>.weight_scale" (the compressed-tensors
// layout): shape [out] or [out, 1] for one scale per output channel, [out,
// in/group] for one per group of inputs; a "<name>.weight_zero_point" (an
// asymmetric scheme) is refused. Other float dtypes (F64, F8) are widened
// to an f32 copy.
func (s *tensorSet) matrix(name string, out, in int, conv1d, absolute bool) (*kernels.Weight, error) {
	wname := name + ".weight"
	t, ok := s.lookup(wname, absolute)
	if !ok {
		if p, ok := s.lookup(wname+"_packed", absolute); ok {
			return s.int4Matrix(p, out, in)
		}
		return nil, fmt.Errorf("%w: missing tensor %s", ErrWeights, quote(s.fullName(wname, absolute)))
	}
	return s.toMatrix(t, out, in, conv1d)
}

func (s *tensorSet) toMatrix(t *weights.Tensor, out, in int, conv1d bool) (*kernels.Weight, error) {
	want := []int64{int64(out), int64(in)}
	if conv1d {
		want = []int64{int64(in), int64(out)}
	}
	if len(t.Shape) != 2 || t.Shape[0] != want[0] || t.Shape[1] != want[1] {
		return nil, fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrWeights, quote(t.Name), t.Shape, want)
	}
	if src, ok := t.Data.(ggmlSource); ok && !conv1d {
		return s.ggmlMatrix(t, src, out, in)
	}
	w := &kernels.Weight{Out: out, In: in, InMajor: conv1d, DType: t.DType}
	switch t.DType {
	case weights.F32, weights.F16, weights.BF16:
		b, err := t.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWeights, err)
		}
		w.Data = b
	case weights.I8:
		b, err := t.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWeights, err)
		}
		w.Data = b
		if err := s.int8Scales(w, t.Name); err != nil {
			return nil, err
		}
		if err := s.w8a8(w, t.Name); err != nil {
			return nil, err
		}
	case weights.F64, weights.F8E4M3, weights.F8E5M2:
		v, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWeights, err)
		}
		if t.DType != weights.F64 {
			if err := s.fp8Scales(v, t.Name, out, in, conv1d); err != nil {
				return nil, err
			}
		}
		w.DType = weights.F32
		w.Data = make([]byte, 4*len(v))
		if err := weights.EncodeFloat32(w.Data, v, weights.F32); err != nil {
			return nil, fmt.Errorf("%w: tensor %s: %v", ErrWeights, quote(t.Name), err)
		}
	default:
		return nil, fmt.Errorf("%w: tensor %s has dtype %v, which the forward pass cannot use as a matrix", ErrUnsupported, quote(t.Name), t.DType)
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("%w: tensor %s: %v", ErrWeights, quote(t.Name), err)
	}
	s.used[t.Name] = true
	s.names[w] = t.Name
	s.matrixElems[w.DType] += int64(out) * int64(in)
	return w, nil
}

// int8Scales attaches the scales of an I8 weight named wname.
func (s *tensorSet) int8Scales(w *kernels.Weight, wname string) error {
	if _, ok := s.g.Tensor(wname + "_zero_point"); ok {
		return fmt.Errorf("%w: tensor %s has a zero point (asymmetric int8); only symmetric scales are supported", ErrUnsupported, quote(wname))
	}
	sname := wname + "_scale"
	st, ok := s.g.Tensor(sname)
	if !ok {
		return fmt.Errorf("%w: int8 tensor %s has no %s", ErrWeights, quote(wname), quote(sname))
	}
	if !st.DType.IsFloat() {
		return fmt.Errorf("%w: tensor %s has dtype %v, want a float type", ErrWeights, quote(sname), st.DType)
	}
	var groups int64
	switch {
	case len(st.Shape) == 1 && st.Shape[0] == int64(w.Out):
		groups = 1
	case len(st.Shape) == 2 && st.Shape[0] == int64(w.Out) && st.Shape[1] > 0 && int64(w.In)%st.Shape[1] == 0:
		groups = st.Shape[1]
	default:
		return fmt.Errorf("%w: tensor %s has shape %v, want [%d], [%d, 1] or [%d, groups] with groups dividing %d",
			ErrWeights, quote(sname), st.Shape, w.Out, w.Out, w.Out, w.In)
	}
	scales, err := st.Float32s()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrWeights, err)
	}
	w.Scales = scales
	if groups > 1 {
		w.GroupSize = w.In / int(groups)
	}
	s.used[sname] = true
	return nil
}

// embedding returns a vocab×dim table as a kernel weight (rows are looked up
// with kernels.Embedding; tied heads use it as a Linear weight).
func (s *tensorSet) embedding(name string, vocab, dim int) (*kernels.Weight, error) {
	return s.matrix(strings.TrimSuffix(name, ".weight"), vocab, dim, false, false)
}

// markUsed records tensors a model knowingly ignores (buffers).
func (s *tensorSet) markUsed(pred func(name string) bool) {
	for _, t := range s.g.Tensors() {
		if pred(t.Name) {
			s.used[t.Name] = true
		}
	}
}

// unused lists the tensors the model did not use, sorted.
func (s *tensorSet) unused() []string {
	var out []string
	for _, t := range s.g.Tensors() {
		if !s.used[t.Name] {
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	return out
}

// mainDType is the dtype holding most matrix elements.
func (s *tensorSet) mainDType() weights.DType {
	best, n := weights.Invalid, int64(-1)
	for _, d := range weights.DTypes() {
		if c, ok := s.matrixElems[d]; ok && c > n {
			best, n = d, c
		}
	}
	return best
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
