package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/x448/float16"
)

// BF16ToFloat32 widens a bfloat16 bit pattern; exact.
func BF16ToFloat32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// Float32ToBF16 narrows to bfloat16 with round-to-nearest-even, as PyTorch
// does; NaN stays a (quiet) NaN.
func Float32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// F16ToFloat32 widens an IEEE half bit pattern; exact.
func F16ToFloat32(b uint16) float32 { return float16.Frombits(b).Float32() }

// Float32ToF16 narrows to IEEE half with round-to-nearest-even; values beyond
// the half range become ±Inf.
func Float32ToF16(f float32) uint16 { return float16.Fromfloat32(f).Bits() }

// The two 8-bit float formats of the safetensors spec (and PyTorch's
// float8_e4m3fn and float8_e5m2): decoded through a table of all 256 codes.
var f8Tables = func() (t [2][256]float32) {
	for c := 0; c < 256; c++ {
		t[0][c] = decodeF8(uint8(c), 3, 7, false)
		t[1][c] = decodeF8(uint8(c), 2, 15, true)
	}
	return t
}()

// decodeF8 decodes a 1-sign, (7-mbits)-exponent, mbits-mantissa float. With
// ieee false the format is the "fn" variant: no infinities, only the all-ones
// code is NaN.
func decodeF8(c uint8, mbits uint, bias int, ieee bool) float32 {
	ebits := 7 - mbits
	sign := float32(1)
	if c&0x80 != 0 {
		sign = -1
	}
	e := int(c>>mbits) & (1<<ebits - 1)
	m := int(c) & (1<<mbits - 1)
	emax := 1<<ebits - 1
	if ieee && e == emax {
		if m == 0 {
			return sign * float32(math.Inf(1))
		}
		return float32(math.NaN())
	}
	if !ieee && e == emax && m == 1<<mbits-1 {
		return float32(math.NaN())
	}
	if e == 0 {
		return sign * float32(math.Ldexp(float64(m), 1-bias-int(mbits)))
	}
	return sign * float32(math.Ldexp(float64(m|1<<mbits), e-bias-int(mbits)))
}

// encodeF8 rounds f to the nearest code of table (ties to the even code).
// Values beyond the largest finite code become NaN for e4m3fn (as PyTorch
// does) and ±Inf for e5m2.
func encodeF8(f float32, table *[256]float32, ieee bool) uint8 {
	if f != f {
		return 0x7f // NaN in both formats
	}
	var sign uint8
	if math.Signbit(float64(f)) {
		sign = 0x80
		f = -f
	}
	// Positive codes 0..0x7f are increasing in value up to the first
	// non-finite one.
	last := 0x7e
	if ieee {
		last = 0x7b
	}
	maxv := table[last]
	if f > maxv {
		// Round-to-nearest would still pick max when within half an ulp.
		half := (table[last] - table[last-1]) / 2
		if f < maxv+half || (f == maxv+half && last%2 == 0) {
			return sign | uint8(last)
		}
		if ieee {
			return sign | 0x7c
		}
		return sign | 0x7f
	}
	i := sort.Search(last+1, func(i int) bool { return table[i] >= f })
	if table[i] == f || i == 0 {
		return sign | uint8(i)
	}
	lo, hi := table[i-1], table[i]
	switch {
	case f-lo < hi-f:
		return sign | uint8(i-1)
	case f-lo > hi-f:
		return sign | uint8(i)
	case (i-1)%2 == 0:
		return sign | uint8(i-1)
	default:
		return sign | uint8(i)
	}
}

// F8E4M3ToFloat32 decodes a float8_e4m3fn code.
func F8E4M3ToFloat32(c uint8) float32 { return f8Tables[0][c] }

// F8E5M2ToFloat32 decodes a float8_e5m2 code.
func F8E5M2ToFloat32(c uint8) float32 { return f8Tables[1][c] }

// Float32ToF8E4M3 encodes with round-to-nearest-even.
func Float32ToF8E4M3(f float32) uint8 { return encodeF8(f, &f8Tables[0], false) }

// Float32ToF8E5M2 encodes with round-to-nearest-even.
func Float32ToF8E5M2(f float32) uint8 { return encodeF8(f, &f8Tables[1], true) }

// DecodeFloat32 converts len(dst) elements of dtype d from little-endian src
// into dst. Integer and bool types convert by value.
func DecodeFloat32(dst []float32, src []byte, d DType) error {
	if len(src) != len(dst)*d.Size() {
		return fmt.Errorf("weights: decode %v: %d bytes for %d elements", d, len(src), len(dst))
	}
	le := binary.LittleEndian
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToFloat32(le.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(le.Uint16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case F8E4M3:
		for i := range dst {
			dst[i] = f8Tables[0][src[i]]
		}
	case F8E5M2:
		for i := range dst {
			dst[i] = f8Tables[1][src[i]]
		}
	case Bool, U8:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case I8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(src[2*i:])))
		}
	case U16:
		for i := range dst {
			dst[i] = float32(le.Uint16(src[2*i:]))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(le.Uint32(src[4*i:])))
		}
	case U32:
		for i := range dst {
			dst[i] = float32(le.Uint32(src[4*i:]))
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(le.Uint64(src[8*i:])))
		}
	case U64:
		for i := range dst {
			dst[i] = float32(le.Uint64(src[8*i:]))
		}
	default:
		return fmt.Errorf("weights: cannot decode %v", d)
	}
	return nil
}

// EncodeFloat32 converts src into len(src) little-endian elements of float
// dtype d in dst, rounding to nearest even.
func EncodeFloat32(dst []byte, src []float32, d DType) error {
	if len(dst) != len(src)*d.Size() {
		return fmt.Errorf("weights: encode %v: %d bytes for %d elements", d, len(dst), len(src))
	}
	le := binary.LittleEndian
	switch d {
	case F32:
		for i, v := range src {
			le.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			le.PutUint16(dst[2*i:], Float32ToF16(v))
		}
	case BF16:
		for i, v := range src {
			le.PutUint16(dst[2*i:], Float32ToBF16(v))
		}
	case F64:
		for i, v := range src {
			le.PutUint64(dst[8*i:], math.Float64bits(float64(v)))
		}
	case F8E4M3:
		for i, v := range src {
			dst[i] = Float32ToF8E4M3(v)
		}
	case F8E5M2:
		for i, v := range src {
			dst[i] = Float32ToF8E5M2(v)
		}
	default:
		return fmt.Errorf("weights: cannot encode float32 as %v", d)
	}
	return nil
}

// MaxFinite returns the largest finite value of a float dtype, and false for
// other dtypes.
func MaxFinite(d DType) (float64, bool) {
	switch d {
	case F16:
		return 65504, true
	case BF16:
		return float64(math.Float32frombits(0x7f7f0000)), true
	case F32:
		return math.MaxFloat32, true
	case F64:
		return math.MaxFloat64, true
	case F8E4M3:
		return 448, true
	case F8E5M2:
		return 57344, true
	}
	return 0, false
}

// Convert re-encodes src, holding n elements of dtype from, as dtype to.
// Float types convert through float32 (F64 directly); converting a dtype to
// itself copies.
func Convert(src []byte, from, to DType) ([]byte, error) {
	if from.Size() == 0 || len(src)%from.Size() != 0 {
		return nil, fmt.Errorf("weights: convert %v: %d bytes is not a whole number of elements", from, len(src))
	}
	n := len(src) / from.Size()
	dst := make([]byte, n*to.Size())
	if from == to {
		copy(dst, src)
		return dst, nil
	}
	if !to.IsFloat() {
		return nil, fmt.Errorf("weights: cannot convert %v to %v", from, to)
	}
	if from == F64 && to == F64 {
		copy(dst, src)
		return dst, nil
	}
	const chunk = 4096
	buf := make([]float32, min(n, chunk))
	es, ed := from.Size(), to.Size()
	for i := 0; i < n; i += chunk {
		k := min(chunk, n-i)
		if err := DecodeFloat32(buf[:k], src[i*es:(i+k)*es], from); err != nil {
			return nil, err
		}
		if err := EncodeFloat32(dst[i*ed:(i+k)*ed], buf[:k], to); err != nil {
			return nil, err
		}
	}
	return dst, nil
}
