package quantize

import (
	"fmt"
	"math"

	"github.com/hubmirror/hubmirror/weights"
)

// matrix is a stored 2-D weight seen as Out output channels by In inputs.
// With inMajor the rows of the stored data are inputs (GPT-2's Conv1D).
type matrix struct {
	out, in int
	inMajor bool
	dtype   weights.DType
	data    []byte
}

// row decodes stored row r (Cols elements) into dst.
func (m *matrix) row(dst []float32, r int) error {
	cols := m.in
	if m.inMajor {
		cols = m.out
	}
	es := m.dtype.Size()
	return weights.DecodeFloat32(dst[:cols], m.data[r*cols*es:(r+1)*cols*es], m.dtype)
}

func (m *matrix) rows() (rows, cols int) {
	if m.inMajor {
		return m.in, m.out
	}
	return m.out, m.in
}

// groupsOf returns the number of scale groups along the input dimension.
func groupsOf(in, groupSize int) int {
	if groupSize <= 0 {
		return 1
	}
	return in / groupSize
}

// int8Scales computes symmetric scales, one per output channel and input
// group: scale[o*G+g] = max|w[o, i in g]| / 127, rounded to the dtype the
// scales are stored in (so that quantizing with the stored scale is exact to
// what a loader will multiply by). An all-zero group gets scale 1.
func int8Scales(m *matrix, groupSize int, scaleType weights.DType) ([]float32, error) {
	groups := groupsOf(m.in, groupSize)
	gs := m.in / groups
	absmax := make([]float32, m.out*groups)
	rows, cols := m.rows()
	buf := make([]float32, cols)
	for r := 0; r < rows; r++ {
		if err := m.row(buf, r); err != nil {
			return nil, err
		}
		if !m.inMajor { // r is an output channel, cols are inputs
			base := r * groups
			for i, v := range buf {
				a := float32(math.Abs(float64(v)))
				if k := base + i/gs; a > absmax[k] {
					absmax[k] = a
				}
			}
		} else { // r is an input, cols are output channels
			g := r / gs
			for o, v := range buf {
				a := float32(math.Abs(float64(v)))
				if k := o*groups + g; a > absmax[k] {
					absmax[k] = a
				}
			}
		}
	}
	for k, a := range absmax {
		if math.IsInf(float64(a), 0) || math.IsNaN(float64(a)) {
			return nil, fmt.Errorf("quantize: non-finite weight in output channel %d", k/groups)
		}
		absmax[k] = storedScale(a/127, scaleType)
	}
	return absmax, nil
}

// storedScale rounds a scale to the dtype it is stored in, keeping it
// positive and finite.
func storedScale(s float32, d weights.DType) float32 {
	if s == 0 {
		return 1
	}
	var r float32
	switch d {
	case weights.F16:
		r = weights.F16ToFloat32(weights.Float32ToF16(s))
		if r == 0 {
			r = weights.F16ToFloat32(1) / 16384 / 1024 // smallest normal-ish half; never zero
		}
	case weights.BF16:
		r = weights.BF16ToFloat32(weights.Float32ToBF16(s))
	default:
		r = s
	}
	if r == 0 || math.IsInf(float64(r), 0) {
		return s
	}
	return r
}

// quantizeInt8 returns the stored data of m quantized to int8 with scales
// (layout of m unchanged): q = clamp(round_half_even(w / scale), -127, 127).
func quantizeInt8(m *matrix, scales []float32, groupSize int) ([]byte, error) {
	groups := groupsOf(m.in, groupSize)
	gs := m.in / groups
	rows, cols := m.rows()
	out := make([]byte, rows*cols)
	buf := make([]float32, cols)
	for r := 0; r < rows; r++ {
		if err := m.row(buf, r); err != nil {
			return nil, err
		}
		dst := out[r*cols : (r+1)*cols]
		if !m.inMajor {
			base := r * groups
			for i, v := range buf {
				dst[i] = byte(quantizeValue(v, scales[base+i/gs]))
			}
		} else {
			g := r / gs
			for o, v := range buf {
				k := o*groups + g
				dst[o] = byte(quantizeValue(v, scales[k]))
			}
		}
	}
	return out, nil
}

// quantizeValue is the plain definition: round(v / scale) clamped to
// [-127, 127], dividing (not multiplying by an inverse) so that the result
// matches PyTorch's torch.round(w / scale) bit for bit.
func quantizeValue(v, scale float32) int8 {
	q := math.RoundToEven(float64(v / scale))
	if q > 127 {
		q = 127
	} else if q < -127 {
		q = -127
	}
	return int8(q)
}

// encodeScales stores scales as dtype d, little-endian.
func encodeScales(scales []float32, d weights.DType) ([]byte, error) {
	b := make([]byte, len(scales)*d.Size())
	if err := weights.EncodeFloat32(b, scales, d); err != nil {
		return nil, err
	}
	return b, nil
}

// dequantizeInt8 is the inverse used by tests and by callers that need the
// float values: w = q * scale.
func dequantizeInt8(q []byte, m *matrix, scales []float32, groupSize int) []float32 {
	groups := groupsOf(m.in, groupSize)
	gs := m.in / groups
	rows, cols := m.rows()
	out := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			o, i := r, c
			if m.inMajor {
				o, i = c, r
			}
			out[r*cols+c] = float32(int8(q[r*cols+c])) * scales[o*groups+i/gs]
		}
	}
	return out
}
