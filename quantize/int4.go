package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// The W4A16 scheme, as compressed-tensors' pack-quantized format and its
// quantize/calculate_qparams define it (4-bit signed range -8..7):
//
//	symmetric:  scale = max(|min|, |max|) / 7.5
//	asymmetric: scale = (max - min) / 15, zero = round(clamp(-8 - min/scale, -8, 7))
//	q = round(clamp(w/scale + zero, -8, 7))   (round half to even)
//
// where min and max are taken over a group of inputs of one output channel
// with 0 included (min ≤ 0 ≤ max), the scale is at least float32's epsilon
// and is rounded to the model dtype before the codes are computed (it is the
// stored value a loader multiplies by). Groups are runs of GroupSize inputs;
// when GroupSize does not divide the input size the last group of a row is
// shorter, and there are ceil(in/GroupSize) scales per row. The arithmetic
// is in f32 (for an f32 model it is PyTorch's; for f16/bf16 PyTorch would
// divide in the half type).

// f32Eps is torch.finfo(torch.float32).eps, the smallest scale.
const f32Eps = 0x1p-23

// logicalRows returns the weight as f32 [out][in] whatever its stored
// layout.
func (m *matrix) logicalRows() ([]float32, error) {
	rows, cols := m.rows()
	all := make([]float32, rows*cols)
	if err := weights.DecodeFloat32(all, m.data, m.dtype); err != nil {
		return nil, err
	}
	if !m.inMajor {
		return all, nil
	}
	t := make([]float32, rows*cols)
	for i := 0; i < m.in; i++ {
		for o := 0; o < m.out; o++ {
			t[o*m.in+i] = all[i*m.out+o]
		}
	}
	return t, nil
}

// int4Params computes the scales (rounded to scaleType) and, for asym, the
// zero points of w [out][in], groups of gs inputs.
func int4Params(w []float32, out, in, gs int, asym bool, scaleType weights.DType) ([]float32, []int8, error) {
	groups := (in + gs - 1) / gs
	scales := make([]float32, out*groups)
	var zeros []int8
	if asym {
		zeros = make([]int8, out*groups)
	}
	for o := 0; o < out; o++ {
		for g := 0; g < groups; g++ {
			var lo, hi float32
			for _, v := range w[o*in+g*gs : o*in+min((g+1)*gs, in)] {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, nil, fmt.Errorf("quantize: non-finite weight in output channel %d", o)
				}
				lo, hi = min(lo, v), max(hi, v)
			}
			var s float32
			if asym {
				s = (hi - lo) / 15
			} else {
				s = max(-lo, hi) / 7.5
			}
			s = roundScale(max(s, f32Eps), scaleType)
			scales[o*groups+g] = s
			if asym {
				z := min(max(-8-lo/s, -8), 7)
				zeros[o*groups+g] = int8(math.RoundToEven(float64(z)))
			}
		}
	}
	return scales, zeros, nil
}

// roundScale rounds a positive scale to its stored dtype, keeping it
// positive (an f16 underflow becomes the smallest f16 subnormal).
func roundScale(s float32, d weights.DType) float32 {
	var r float32
	switch d {
	case weights.F16:
		r = weights.F16ToFloat32(weights.Float32ToF16(s))
		if r == 0 {
			r = 0x1p-24
		}
	case weights.BF16:
		r = weights.BF16ToFloat32(weights.Float32ToBF16(s))
	default:
		r = s
	}
	return r
}

// int4Codes returns the codes of w [out][in] with the given parameters.
func int4Codes(w []float32, out, in, gs int, scales []float32, zeros []int8) []int8 {
	groups := (in + gs - 1) / gs
	q := make([]int8, out*in)
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			k := o*groups + i/gs
			y := w[o*in+i] / scales[k]
			if zeros != nil {
				y += float32(zeros[k])
			}
			q[o*in+i] = int8(math.RoundToEven(float64(min(max(y, -8), 7))))
		}
	}
	return q
}

// int4Job computes one weight's W4A16 tensors. Scales and zero points are
// kept once computed (they are small); the codes are recomputed from the
// source on each request.
type int4Job struct {
	src       *weights.Tensor
	out, in   int
	inMajor   bool
	groupSize int // effective: in when per channel
	asym      bool
	scaleType weights.DType

	mu     sync.Mutex
	scales []float32
	zeros  []int8
	// codes, when set (GPTQ), are the codes [out][in], computed with scales
	// and zeros given too.
	codes []int8
}

func (j *int4Job) weights() ([]float32, error) {
	b, err := j.src.Bytes()
	if err != nil {
		return nil, err
	}
	return newMatrix(j.out, j.in, j.inMajor, j.src.DType, b).logicalRows()
}

// params returns the scales and zero points, computing them on first use.
func (j *int4Job) params(w []float32) ([]float32, []int8, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.scales != nil {
		return j.scales, j.zeros, nil
	}
	if w == nil {
		var err error
		if w, err = j.weights(); err != nil {
			return nil, nil, err
		}
	}
	s, z, err := int4Params(w, j.out, j.in, j.groupSize, j.asym, j.scaleType)
	if err != nil {
		return nil, nil, err
	}
	j.scales, j.zeros = s, z
	return s, z, nil
}

// packed returns weight_packed's bytes.
func (j *int4Job) packed() ([]byte, error) {
	if j.codes != nil {
		return kernels.PackInt4(j.codes, j.out, j.in), nil
	}
	w, err := j.weights()
	if err != nil {
		return nil, err
	}
	s, z, err := j.params(w)
	if err != nil {
		return nil, err
	}
	return kernels.PackInt4(int4Codes(w, j.out, j.in, j.groupSize, s, z), j.out, j.in), nil
}

// int4Tensors returns the lazy tensors of the pack-quantized layout for t:
// weight_packed, weight_scale, weight_shape and, for asym,
// weight_zero_point. A Conv1D weight (stored [in][out]) is packed in the
// Linear orientation [out][in], as weight_shape says. pre, when not nil,
// holds codes and parameters already computed (GPTQ) instead of rounding
// to nearest.
func int4Tensors(t *weights.Tensor, cfg *arch.Config, groupSize int, asym bool, pre *int4Result) ([]*weights.Tensor, error) {
	o, i, err := linearDims(t, cfg)
	if err != nil {
		return nil, err
	}
	out, in := int64(o), int64(i)
	if out*((in+7)/8) > math.MaxInt32 {
		return nil, fmt.Errorf("quantize: %s: shape %v too large", t.Name, t.Shape)
	}
	prefix := strings.TrimSuffix(t.Name, ".weight")
	gs := groupSize
	if gs <= 0 || gs > int(in) {
		gs = int(in)
	}
	groups := (in + int64(gs) - 1) / int64(gs)
	job := &int4Job{src: t, out: int(out), in: int(in), inMajor: arch.IsConv1D(cfg, t.Name), groupSize: gs, asym: asym,
		scaleType: t.DType}
	if pre != nil {
		job.scales, job.zeros, job.codes = pre.scales, pre.zeros, pre.codes
	}
	wrap := func(f func() ([]byte, error)) weights.Source {
		return weights.SourceFunc(func() ([]byte, error) {
			b, err := f()
			if err != nil {
				return nil, fmt.Errorf("quantize %s: %w", t.Name, err)
			}
			return b, nil
		})
	}
	shape := make([]byte, 16)
	binary.LittleEndian.PutUint64(shape, uint64(out))
	binary.LittleEndian.PutUint64(shape[8:], uint64(in))
	ts := []*weights.Tensor{
		{Name: prefix + ".weight_packed", DType: weights.I32, Shape: []int64{out, (in + 7) / 8}, File: t.File, Data: wrap(job.packed)},
		{Name: prefix + ".weight_scale", DType: t.DType, Shape: []int64{out, groups}, File: t.File,
			Data: wrap(func() ([]byte, error) {
				s, _, err := job.params(nil)
				if err != nil {
					return nil, err
				}
				return encodeScales(s, t.DType)
			})},
		{Name: prefix + ".weight_shape", DType: weights.I64, Shape: []int64{2}, File: t.File,
			Data: wrap(func() ([]byte, error) { return shape, nil })},
	}
	if asym {
		ts = append(ts, &weights.Tensor{Name: prefix + ".weight_zero_point", DType: weights.I32, Shape: []int64{(out + 7) / 8, groups}, File: t.File,
			Data: wrap(func() ([]byte, error) {
				_, z, err := job.params(nil)
				if err != nil {
					return nil, err
				}
				return kernels.PackInt4Columns(z, int(out), int(groups)), nil
			})})
	}
	return ts, nil
}

// PackQuantizedConfig returns the quantization_config llm-compressor writes
// for W4A16 (int4 weights, activations in float) in the pack-quantized
// format; groupSize 0 means one scale per output channel.
func PackQuantizedConfig(groupSize int, asym bool, ignore []string) map[string]any {
	strategy := "channel"
	var gs any
	if groupSize > 0 {
		strategy, gs = "group", groupSize
	}
	return compressedTensorsConfig("pack-quantized", quantArgs(4, "int", !asym, strategy, gs, false, "minmax"), nil, "pack-quantized", ignore)
}
