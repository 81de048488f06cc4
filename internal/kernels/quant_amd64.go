//go:build amd64 && !purego

package kernels

// The int8 assembly kernels take a length that is a multiple of their
// vector width (16 with AVX-512, 8 with AVX2); the Go loops do the rest. The
// CPU features are those the forward pass selects with (gemm_amd64.go).

//go:noescape
func absmaxAVX512(x *float32, n int) uint32

//go:noescape
func maxAbsIntoAVX512(acc *uint32, x *float32, n int)

//go:noescape
func quantizeRunAVX512(dst *byte, x *float32, n int, s float32)

//go:noescape
func quantizeEachAVX512(dst *byte, x, s *float32, n int)

//go:noescape
func absmaxGroupsAVX512(dst *uint32, x *float32, groups, gs int)

//go:noescape
func quantizeGroupsAVX512(dst *byte, x, s *float32, groups, gs int)

//go:noescape
func absmaxGroupsAVX2(dst *uint32, x *float32, groups, gs int)

//go:noescape
func quantizeGroupsAVX2(dst *byte, x, s *float32, groups, gs int)

//go:noescape
func absmaxAVX2(x *float32, n int) uint32

//go:noescape
func maxAbsIntoAVX2(acc *uint32, x *float32, n int)

//go:noescape
func quantizeRunAVX2(dst *byte, x *float32, n int, s float32)

//go:noescape
func quantizeEachAVX2(dst *byte, x, s *float32, n int)

// vectorLen returns how many leading elements of n the int8 assembly
// kernels take: a multiple of their width, 0 without AVX2.
func vectorLen(n int) int {
	switch {
	case hasAVX512:
		return n &^ 15
	case hasAVX2:
		return n &^ 7
	}
	return 0
}

// AbsMaxBits is absmaxRef: the bits of the largest |x[i]|.
func AbsMaxBits(x []float32) uint32 {
	n := vectorLen(len(x))
	var m uint32
	switch {
	case n == 0:
	case hasAVX512:
		m = absmaxAVX512(&x[0], n)
	default:
		m = absmaxAVX2(&x[0], n)
	}
	return max(m, absmaxGo(x[n:]))
}

// MaxAbsBitsInto is maxAbsIntoRef: acc[i] = max(acc[i], bits of |x[i]|).
func MaxAbsBitsInto(acc []uint32, x []float32) {
	acc = acc[:len(x)]
	n := vectorLen(len(x))
	switch {
	case n == 0:
	case hasAVX512:
		maxAbsIntoAVX512(&acc[0], &x[0], n)
	default:
		maxAbsIntoAVX2(&acc[0], &x[0], n)
	}
	maxAbsIntoGo(acc[n:], x[n:])
}

// groupsFit reports whether the group kernels take groups of gs elements
// whole.
func groupsFit(gs int) bool {
	switch {
	case hasAVX512:
		return gs%16 == 0
	case hasAVX2:
		return gs%8 == 0
	}
	return false
}

// AbsMaxBitsGroups is absmaxGroupsRef: AbsMaxBits of every group of gs
// values of x, len(dst) groups.
func AbsMaxBitsGroups(dst []uint32, x []float32, gs int) {
	x = x[:len(dst)*gs]
	switch {
	case len(dst) == 0:
	case !groupsFit(gs):
		absmaxGroupsGo(dst, x, gs)
	case hasAVX512:
		absmaxGroupsAVX512(&dst[0], &x[0], len(dst), gs)
	default:
		absmaxGroupsAVX2(&dst[0], &x[0], len(dst), gs)
	}
}

// QuantizeGroups is quantizeGroupsRef for finite x and finite non-zero s:
// QuantizeRun of every group of gs values of x with its scale s[g].
func QuantizeGroups(dst []byte, x, s []float32, gs int) {
	x = x[:len(s)*gs]
	dst = dst[:len(x)]
	switch {
	case len(s) == 0:
	case !groupsFit(gs):
		quantizeGroupsGo(dst, x, s, gs)
	case hasAVX512:
		quantizeGroupsAVX512(&dst[0], &x[0], &s[0], len(s), gs)
	default:
		quantizeGroupsAVX2(&dst[0], &x[0], &s[0], len(s), gs)
	}
}

// QuantizeRun is quantizeRunRef for finite x and a finite non-zero s:
// dst[i] = QuantizeValue(x[i], s).
func QuantizeRun(dst []byte, x []float32, s float32) {
	dst = dst[:len(x)]
	n := vectorLen(len(x))
	switch {
	case n == 0:
	case hasAVX512:
		quantizeRunAVX512(&dst[0], &x[0], n, s)
	default:
		quantizeRunAVX2(&dst[0], &x[0], n, s)
	}
	quantizeRunGo(dst[n:], x[n:], s)
}

// QuantizeEach is quantizeEachRef for finite x and finite non-zero s:
// dst[i] = QuantizeValue(x[i], s[i]).
func QuantizeEach(dst []byte, x, s []float32) {
	dst, s = dst[:len(x)], s[:len(x)]
	n := vectorLen(len(x))
	switch {
	case n == 0:
	case hasAVX512:
		quantizeEachAVX512(&dst[0], &x[0], &s[0], n)
	default:
		quantizeEachAVX2(&dst[0], &x[0], &s[0], n)
	}
	quantizeEachGo(dst[n:], x[n:], s[n:])
}
