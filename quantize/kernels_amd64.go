//go:build amd64 && !purego

package quantize

import (
	"golang.org/x/sys/cpu"

	"github.com/hubmirror/hubmirror/weights"
)

// The assembly kernels take a length that is a multiple of their vector
// width (16 with AVX-512, 8 with AVX2); the Go loops do the rest.
var (
	hasAVX512 = cpu.X86.HasAVX512F
	hasAVX2   = cpu.X86.HasAVX2
	hasF16C   = cpu.X86.HasF16C && cpu.X86.HasAVX
)

//go:noescape
func absmaxAVX512(x *float32, n int) uint32

//go:noescape
func maxAbsIntoAVX512(acc *uint32, x *float32, n int)

//go:noescape
func quantizeRunAVX512(dst *byte, x *float32, n int, s float32)

//go:noescape
func quantizeEachAVX512(dst *byte, x, s *float32, n int)

//go:noescape
func widenBF16AVX512(dst *float32, src *byte, n int)

//go:noescape
func widenF16AVX512(dst *float32, src *byte, n int)

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

//go:noescape
func widenBF16AVX2(dst *float32, src *byte, n int)

//go:noescape
func widenF16F16C(dst *float32, src *byte, n int)

// vectorLen returns how many leading elements of n the assembly kernels
// take: a multiple of their width, 0 without AVX2.
func vectorLen(n int) int {
	switch {
	case hasAVX512:
		return n &^ 15
	case hasAVX2:
		return n &^ 7
	}
	return 0
}

// absmax is absmaxRef.
func absmax(x []float32) uint32 {
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

// maxAbsInto is maxAbsIntoRef.
func maxAbsInto(acc []uint32, x []float32) {
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

// absmaxGroups is absmaxGroupsRef.
func absmaxGroups(dst []uint32, x []float32, gs int) {
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

// quantizeGroups is quantizeGroupsRef for finite x and finite non-zero s.
func quantizeGroups(dst []byte, x, s []float32, gs int) {
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

// quantizeRun is quantizeRunRef for finite x and a finite non-zero s.
func quantizeRun(dst []byte, x []float32, s float32) {
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

// quantizeEach is quantizeEachRef for finite x and finite non-zero s.
func quantizeEach(dst []byte, x, s []float32) {
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

// widen is widenRef for d F16 or BF16.
func widen(dst []float32, src []byte, d weights.DType) {
	src = src[:2*len(dst)]
	n := vectorLen(len(dst))
	switch {
	case n == 0:
	case d == weights.BF16 && hasAVX512:
		widenBF16AVX512(&dst[0], &src[0], n)
	case d == weights.BF16:
		widenBF16AVX2(&dst[0], &src[0], n)
	case d == weights.F16 && hasAVX512:
		widenF16AVX512(&dst[0], &src[0], n)
	case d == weights.F16 && hasF16C:
		widenF16F16C(&dst[0], &src[0], n)
	default:
		n = 0
	}
	widenGo(dst[n:], src[2*n:], d)
}
