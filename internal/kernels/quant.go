package kernels

import (
	"math"

	"github.com/hubmirror/hubmirror/weights"
)

// The int8 quantization kernels of the quantize package. Each is documented
// as the plain loop it computes, which is kept as the reference (…Ref); the
// versions callers run (AbsMaxBits, AbsMaxBitsGroups, MaxAbsBitsInto,
// QuantizeRun, QuantizeGroups, QuantizeEach) are unrolled Go loops, or
// AVX-512 / AVX2 assembly on amd64 chosen at run time (quant_amd64.go), and
// are tested against the references in quant_test.go. F16 and BF16 rows are
// widened with Widen, the widening the forward pass packs with.

// absMask clears the sign bit of a float32's bits.
const absMask = 0x7fffffff

// FiniteLimit is the bits of +Inf: absolute-value bits (as AbsMaxBits
// returns) at or above it are an infinity or a NaN.
const FiniteLimit = 0x7f800000

// absmaxRef returns max over i of Float32bits(x[i]) & absMask, 0 for an
// empty x: the bits of the largest |x[i]|. The bits of non-negative floats
// order as their values do, with +Inf at FiniteLimit and every NaN above
// it, so a result >= FiniteLimit means that x holds an infinity or a NaN
// (which a float comparison would skip).
func absmaxRef(x []float32) uint32 {
	var m uint32
	for _, v := range x {
		if b := math.Float32bits(v) & absMask; b > m {
			m = b
		}
	}
	return m
}

// maxAbsIntoRef sets acc[i] = max(acc[i], Float32bits(x[i]) & absMask).
func maxAbsIntoRef(acc []uint32, x []float32) {
	for i, v := range x {
		if b := math.Float32bits(v) & absMask; b > acc[i] {
			acc[i] = b
		}
	}
}

// absmaxGroupsRef sets dst[g] = absmaxRef(x[g*gs:(g+1)*gs]) for every g <
// len(dst).
func absmaxGroupsRef(dst []uint32, x []float32, gs int) {
	for g := range dst {
		dst[g] = absmaxRef(x[g*gs : (g+1)*gs])
	}
}

// quantizeGroupsRef calls quantizeRunRef(dst[g*gs:(g+1)*gs],
// x[g*gs:(g+1)*gs], s[g]) for every g < len(s).
func quantizeGroupsRef(dst []byte, x, s []float32, gs int) {
	for g := range s {
		quantizeRunRef(dst[g*gs:(g+1)*gs], x[g*gs:(g+1)*gs], s[g])
	}
}

// quantizeRunRef sets dst[i] = QuantizeValue(x[i], s).
func quantizeRunRef(dst []byte, x []float32, s float32) {
	for i, v := range x {
		dst[i] = byte(QuantizeValue(v, s))
	}
}

// quantizeEachRef sets dst[i] = QuantizeValue(x[i], s[i]).
func quantizeEachRef(dst []byte, x, s []float32) {
	for i, v := range x {
		dst[i] = byte(QuantizeValue(v, s[i]))
	}
}

// QuantizeValue is the plain definition of the int8 code of v with scale
// scale: round(v / scale) clamped to [-127, 127], dividing (not multiplying
// by an inverse) so that the result matches PyTorch's torch.round(w / scale)
// bit for bit.
func QuantizeValue(v, scale float32) int8 {
	q := math.RoundToEven(float64(v / scale))
	if q > 127 {
		q = 127
	} else if q < -127 {
		q = -127
	}
	return int8(q)
}

// absmaxGo is absmaxRef in four independent maxima.
func absmaxGo(x []float32) uint32 {
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		m0 = max(m0, math.Float32bits(x[i])&absMask)
		m1 = max(m1, math.Float32bits(x[i+1])&absMask)
		m2 = max(m2, math.Float32bits(x[i+2])&absMask)
		m3 = max(m3, math.Float32bits(x[i+3])&absMask)
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float32bits(x[i])&absMask)
	}
	return max(m0, m1, m2, m3)
}

// maxAbsIntoGo is maxAbsIntoRef.
func maxAbsIntoGo(acc []uint32, x []float32) {
	acc = acc[:len(x)]
	for i, v := range x {
		acc[i] = max(acc[i], math.Float32bits(v)&absMask)
	}
}

// roundClamp returns QuantizeValue's result for a quotient y that is not
// NaN: clamping first does not change the result (±127 are integers), and
// adding 1.5·2^23 rounds a float32 of magnitude below 2^22 to an integer,
// half to even, which then sits in the low mantissa bits.
func roundClamp(y float32) int8 {
	y = min(max(y, -127), 127)
	return int8(int32(math.Float32bits(y+0x1.8p23)) - 0x4b400000)
}

// quantizeRunGo is quantizeRunRef for finite x and a finite non-zero s.
func quantizeRunGo(dst []byte, x []float32, s float32) {
	dst = dst[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		dst[i] = byte(roundClamp(x[i] / s))
		dst[i+1] = byte(roundClamp(x[i+1] / s))
		dst[i+2] = byte(roundClamp(x[i+2] / s))
		dst[i+3] = byte(roundClamp(x[i+3] / s))
	}
	for ; i < len(x); i++ {
		dst[i] = byte(roundClamp(x[i] / s))
	}
}

// quantizeEachGo is quantizeEachRef for finite x and finite non-zero s.
func quantizeEachGo(dst []byte, x, s []float32) {
	dst, s = dst[:len(x)], s[:len(x)]
	for i, v := range x {
		dst[i] = byte(roundClamp(v / s[i]))
	}
}

// absmaxGroupsGo is absmaxGroupsRef, with AbsMaxBits on each group.
func absmaxGroupsGo(dst []uint32, x []float32, gs int) {
	for g := range dst {
		dst[g] = AbsMaxBits(x[g*gs : (g+1)*gs])
	}
}

// quantizeGroupsGo is quantizeGroupsRef, with QuantizeRun on each group.
func quantizeGroupsGo(dst []byte, x, s []float32, gs int) {
	for g := range s {
		QuantizeRun(dst[g*gs:(g+1)*gs], x[g*gs:(g+1)*gs], s[g])
	}
}

// Widen decodes n = len(dst) little-endian F32, F16 or BF16 values from
// src (at least n elements long) into dst, exactly.
func Widen(dst []float32, src []byte, d weights.DType) {
	switch d {
	case weights.F32:
		widenF32Bytes(dst, src[:4*len(dst)])
	case weights.F16:
		widenF16(dst, src[:2*len(dst)])
	case weights.BF16:
		widenBF16(dst, src[:2*len(dst)])
	default:
		panic("kernels: Widen of " + d.String())
	}
}
