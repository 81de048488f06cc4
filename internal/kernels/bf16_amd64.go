//go:build amd64 && !purego

package kernels

import "github.com/hubmirror/hubmirror/weights"

//go:noescape
func dotBF16AVX512(x *float32, w *byte, n int) float32

//go:noescape
func dotF16AVX512(x *float32, w *byte, n int) float32

// dotBF16 returns Σ x[i]·w[i] for the len(x) little-endian bfloat16s of w:
// dot's result on the widened values, bit for bit (16 at a time with
// AVX-512, the rest as dotGo).
func dotBF16(x []float32, w []byte) float32 {
	n := 0
	var s float32
	if hasAVX512 {
		n = len(x) &^ 15
		if n > 0 {
			_ = w[2*n-1]
			s = dotBF16AVX512(&x[0], &w[0], n)
		}
	}
	return s + dotBF16Go(x[n:], w[2*n:])
}

// dotF16 is dotBF16 for IEEE halves.
func dotF16(x []float32, w []byte) float32 {
	n := 0
	var s float32
	if hasAVX512 {
		n = len(x) &^ 15
		if n > 0 {
			_ = w[2*n-1]
			s = dotF16AVX512(&x[0], &w[0], n)
		}
	}
	return s + dotF16Go(x[n:], w[2*n:])
}

//go:noescape
func dotsBF16x4AVX512(out *float32, x *float32, w *byte, ldw int, n int)

//go:noescape
func dotsF16x4AVX512(out *float32, x *float32, w *byte, ldw int, n int)

// halfDots4 returns, for a BF16 or F16 weight on a CPU with AVX-512, the
// function that sets s[r] = Σ x[i]·W_r[i] for the four rows W_r of len(x)
// halves each, one after another in w: dotBF16 or dotF16 of each row, bit
// for bit, with x read once for the four. It returns nil otherwise.
func halfDots4(d weights.DType) func(s *[4]float32, x []float32, w []byte) {
	if !hasAVX512 {
		return nil
	}
	kernel, tail := dotsBF16x4AVX512, dotBF16Go
	switch d {
	case weights.BF16:
	case weights.F16:
		kernel, tail = dotsF16x4AVX512, dotF16Go
	default:
		return nil
	}
	return func(s *[4]float32, x []float32, w []byte) {
		k := len(x)
		w = w[:8*k]
		n := k &^ 15
		*s = [4]float32{}
		if n > 0 {
			kernel(&s[0], &x[0], &w[0], 2*k, n)
		}
		if n < k {
			for r := range s {
				s[r] += tail(x[n:], w[2*(r*k+n):2*(r+1)*k])
			}
		}
	}
}
