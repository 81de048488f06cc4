package kernels

import (
	"encoding/binary"
	"math"

	"github.com/hubmirror/hubmirror/weights"
)

// rowsHalf computes y[t][o] = Σ_i x[t][i]·W[o][i] (+ bias[o]) for every
// row t < m and output o0 ≤ o < o1 of a BF16 or F16 weight stored
// [Out][In], widening each weight as it is multiplied (dotBF16, dotF16;
// four outputs at a time where halfDots4 has a kernel) instead of widening
// the row into a buffer first. It reports false, having
// done nothing, for any other weight.
func rowsHalf(y, x []float32, m int, w *Weight, o0, o1 int, bias []float32) bool {
	if w.InMajor {
		return false
	}
	var dotHalf func(x []float32, w []byte) float32
	switch w.DType {
	case weights.BF16:
		dotHalf = dotBF16
	case weights.F16:
		dotHalf = dotF16
	default:
		return false
	}
	n, k := w.Out, w.In
	o := o0
	if dots4 := halfDots4(w.DType); dots4 != nil {
		var s [4]float32
		for ; o+4 <= o1; o += 4 {
			rows := w.Data[2*o*k : 2*(o+4)*k]
			for t := 0; t < m; t++ {
				dots4(&s, x[t*k:(t+1)*k], rows)
				for r, v := range s {
					if bias != nil {
						v += bias[o+r]
					}
					y[t*n+o+r] = v
				}
			}
		}
	}
	for ; o < o1; o++ {
		row := w.Data[2*o*k : 2*(o+1)*k]
		for t := 0; t < m; t++ {
			s := dotHalf(x[t*k:(t+1)*k], row)
			if bias != nil {
				s += bias[o]
			}
			y[t*n+o] = s
		}
	}
	return true
}

// dotBF16Go returns Σ x[i]·w[i] for the len(x) little-endian bfloat16s of
// w, summed as dotGo sums (four partial sums): the same result, bit for
// bit, as dotGo on the widened values.
func dotBF16Go(x []float32, w []byte) float32 {
	w = w[:2*len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * bf16ToF32(w[2*i:])
		s1 += x[i+1] * bf16ToF32(w[2*i+2:])
		s2 += x[i+2] * bf16ToF32(w[2*i+4:])
		s3 += x[i+3] * bf16ToF32(w[2*i+6:])
	}
	for ; i < len(x); i++ {
		s0 += x[i] * bf16ToF32(w[2*i:])
	}
	return (s0 + s1) + (s2 + s3)
}

// dotF16Go is dotBF16Go for IEEE halves.
func dotF16Go(x []float32, w []byte) float32 {
	w = w[:2*len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * f16ToF32(binary.LittleEndian.Uint16(w[2*i:]))
		s1 += x[i+1] * f16ToF32(binary.LittleEndian.Uint16(w[2*i+2:]))
		s2 += x[i+2] * f16ToF32(binary.LittleEndian.Uint16(w[2*i+4:]))
		s3 += x[i+3] * f16ToF32(binary.LittleEndian.Uint16(w[2*i+6:]))
	}
	for ; i < len(x); i++ {
		s0 += x[i] * f16ToF32(binary.LittleEndian.Uint16(w[2*i:]))
	}
	return (s0 + s1) + (s2 + s3)
}

// bf16ToF32 widens the little-endian bfloat16 at b[0:2] exactly: its bits
// are the high half of the f32's.
func bf16ToF32(b []byte) float32 {
	return math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16)
}
